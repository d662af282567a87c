import type { FastifyBaseLogger } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { servesSlots, withTimeout, type RedisClient } from '@headroom/core'

/** a master lost again within this long is the same loss (its reconnects during the failover) */
const NODE_LOSS_REPEAT_MS = 30_000

/** What travels on the bus: keys and tags to drop, or a key whose lease ended. Never values. */
export interface BusMessage {
  /** sender, so an instance ignores its own echo */
  i: string
  k?: string[]
  t?: string[]
  /** a lease on this key ended: waiters re-read L2 */
  l?: string
}

export interface BusHandlers {
  onInvalidate (keys: string[], tags: string[]): void
  /** the subscription was down: messages may have been lost */
  onResync (): void
}

/**
 * The invalidation bus: Redis pub/sub on a subscriber connection of its own
 * (a subscribed connection can run no other command). Also wakes instances
 * waiting for another instance's lease.
 *
 * Plain PUBLISH, not sharded pub/sub: every instance needs every message (any
 * L1 may hold any key), and a Redis Cluster broadcasts PUBLISH to every node,
 * so one connection to any node hears all of it. On a cluster the bus keeps
 * that connection itself, instead of ioredis's cluster subscriber, which
 * moves to another node silently: here a lost connection is seen, and L1 is
 * dropped once the bus is back, since messages may have been lost meanwhile.
 */
export class Bus {
  readonly #sub: Redis | null = null
  readonly #cluster: Cluster | null = null
  #node: Redis | null = null
  /** a random first node: the instances' subscribers spread over the cluster */
  #nodeIndex = Math.floor(Math.random() * 1024)
  readonly #waiters = new Map<string, Set<() => void>>()
  /** when each master's loss last dropped L1 */
  readonly #lostAt = new Map<string, number>()
  readonly #handlers: BusHandlers
  readonly #log: FastifyBaseLogger
  #wasDown = false
  #closed = false
  connected = false

  constructor (client: RedisClient, readonly channel: string, readonly instanceId: string, handlers: BusHandlers, log: FastifyBaseLogger) {
    this.#handlers = handlers
    this.#log = log
    if ((client as { isCluster?: boolean }).isCluster) {
      this.#cluster = client as Cluster
      // a node gone (a failover): its last messages may never have been broadcast
      this.#cluster.on('-node', this.#onNodeLost)
    } else {
      // the subscriber may queue SUBSCRIBE until it connects: nothing on the request path waits for it
      this.#sub = (client as Redis).duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false })
      this.#attach(this.#sub)
    }
  }

  /**
   * A master gone: messages it had not broadcast are lost, so L1 is dropped,
   * once per loss. While a dead master's slots wait for a replica, every
   * slot refresh re-adds it and its failed reconnect removes it again, many
   * times a second: dropping L1 each time sent every read to L2, where the
   * dead slots wait out the command timeout.
   */
  #onNodeLost = (node?: { options?: { host?: string, port?: number } }): void => {
    if (this.#closed) return
    const name = node?.options === undefined ? undefined : `${node.options.host}:${node.options.port}`
    if (name !== undefined) {
      if (!servesSlots(this.#cluster!, name)) return
      const now = Date.now()
      if (now - (this.#lostAt.get(name) ?? -Infinity) < NODE_LOSS_REPEAT_MS) return
      this.#lostAt.set(name, now)
    }
    this.#handlers.onResync()
  }

  /** Standalone: ioredis reconnects and resubscribes by itself. */
  #attach (sub: Redis): void {
    this.#listen(sub)
    sub.on('close', () => this.#down())
    sub.on('ready', () => {
      this.connected = true
      this.#resyncIfDown()
    })
  }

  #listen (sub: Redis): void {
    sub.on('error', (err: Error) => this.#log.debug({ err: err.message }, '@headroom/cache: bus connection error'))
    sub.on('message', (channel: string, text: string) => {
      if (channel === this.channel) this.#receive(text)
    })
  }

  #down (): void {
    if (this.connected) this.#log.warn('@headroom/cache: invalidation bus disconnected; L1 entries live at most l1.maxTtl')
    this.connected = false
    this.#wasDown = true
  }

  #resyncIfDown (): void {
    if (this.#wasDown && !this.#closed) {
      this.#wasDown = false
      this.#handlers.onResync()
    }
  }

  #receive (text: string): void {
    let msg: BusMessage
    try {
      msg = JSON.parse(text) as BusMessage
    } catch {
      return
    }
    if (msg.l !== undefined) this.#wake(msg.l)
    if (msg.i === this.instanceId) return
    if (msg.k || msg.t) this.#handlers.onInvalidate(msg.k ?? [], msg.t ?? [])
  }

  /** Cluster: subscribes on one node (the next known one after a loss); reconnects to another when it goes. */
  async #subscribeToNode (): Promise<void> {
    const nodes = this.#cluster!.nodes('all')
    if (nodes.length === 0) {
      // no node known yet (the cluster client is still connecting): try again shortly
      this.#wasDown = true
      await new Promise((resolve) => setTimeout(resolve, 100).unref())
      if (!this.#closed) return this.#subscribeToNode()
      return
    }
    // a copy of a node's connection (same credentials, TLS), without the cluster's own reconnects
    const sub = nodes[this.#nodeIndex++ % nodes.length]!.duplicate({ retryStrategy: () => null, enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false, readOnly: false })
    this.#node = sub
    this.#listen(sub)
    sub.once('end', () => {
      this.#down()
      if (this.#closed || this.#node !== sub) return
      setTimeout(() => { this.#subscribeToNode().catch(() => {}) }, 100).unref()
    })
    await sub.subscribe(this.channel)
    this.connected = true
    this.#resyncIfDown()
  }

  /** Subscribes, waiting at most `ms`; a Redis that is down at boot only delays the subscription. */
  async start (ms: number): Promise<void> {
    try {
      if (this.#sub) {
        await withTimeout(this.#sub.subscribe(this.channel), ms)
        this.connected = true
      } else {
        await withTimeout(this.#subscribeToNode(), ms)
      }
    } catch {
      this.#wasDown = true
    }
  }

  message (payload: Omit<BusMessage, 'i'>): string {
    return JSON.stringify({ i: this.instanceId, ...payload })
  }

  /** Resolves when a lease on `key` ends (or after `ms`): no polling. */
  waitForLease (key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(key)
      if (!set) this.#waiters.set(key, set = new Set())
      const waiters = set
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0 && this.#waiters.get(key) === waiters) this.#waiters.delete(key)
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref()
      waiters.add(done)
    })
  }

  #wake (key: string): void {
    const set = this.#waiters.get(key)
    if (set) for (const done of [...set]) done()
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const key of [...this.#waiters.keys()]) this.#wake(key)
    this.#cluster?.off('-node', this.#onNodeLost)
    const sub = this.#sub ?? this.#node
    if (sub) await sub.quit().catch(() => sub.disconnect())
  }
}
