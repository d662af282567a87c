import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { servesSlots, withTimeout, type RedisClient } from './redis.js'

/** a master lost again within this long is the same loss (its reconnects during the failover) */
const NODE_LOSS_REPEAT_MS = 30_000

/** Every bus message carries its sender, so an instance can tell its own echo. */
export type BusEnvelope<M extends object> = M & { i: string }

export interface InvalidationBusOptions<M extends object> {
  /** the pub/sub channel, e.g. `${prefix}bus` */
  channel: string
  /** who logs, e.g. `@headroom/cache` */
  name: string
  /** this instance's id in the messages it sends; random by default */
  instanceId?: string
  /** a message from the channel; `own` when this instance sent it */
  onMessage (message: BusEnvelope<M>, own: boolean): void
  /** the subscription was down (or a Cluster master was lost): messages may have been lost, drop what they would have invalidated */
  onResync (): void
  /** logged (warn) when the subscription is lost, after the name */
  downMessage?: string
  log: FastifyBaseLogger
}

/**
 * An invalidation bus: Redis pub/sub on a subscriber connection of its own
 * (a subscribed connection can run no other command), shared by the
 * plugins that keep copies of Redis data in memory (the cache's L1, the
 * session store's hot sessions).
 *
 * Plain PUBLISH, not sharded pub/sub: every instance needs every message (any
 * copy may hold any key), and a Redis Cluster broadcasts PUBLISH to every node,
 * so one connection to any node hears all of it. On a cluster the bus keeps
 * that connection itself, instead of ioredis's cluster subscriber, which
 * moves to another node silently: here a lost connection is seen, and
 * `onResync` runs once the bus is back, since messages may have been lost
 * meanwhile. `connected` turns true only once the SUBSCRIBE is acknowledged,
 * so a read that starts after it cannot miss a later message.
 */
export class InvalidationBus<M extends object> {
  readonly #sub: Redis | null = null
  readonly #cluster: Cluster | null = null
  #node: Redis | null = null
  /** a random first node: the instances' subscribers spread over the cluster */
  #nodeIndex = Math.floor(Math.random() * 1024)
  /** when each master's loss last dropped what the messages protect */
  readonly #lostAt = new Map<string, number>()
  readonly #o: InvalidationBusOptions<M>
  readonly instanceId: string
  readonly channel: string
  /** bumped whenever the subscription may have missed a message: a sync that spans it fails */
  #epoch = 0
  #syncs: Array<(ok: boolean) => void> | null = null
  /** PINGs sent and not answered yet: settled false at once when the connection goes */
  readonly #pings = new Set<(ok: boolean) => void>()
  #wasDown = false
  #closed = false
  connected = false

  constructor (client: RedisClient, options: InvalidationBusOptions<M>) {
    this.#o = options
    this.channel = options.channel
    this.instanceId = options.instanceId ?? randomBytes(8).toString('base64url')
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
   * A master gone: messages it had not broadcast are lost, so `onResync`
   * runs, once per loss. While a dead master's slots wait for a replica,
   * every slot refresh re-adds it and its failed reconnect removes it again,
   * many times a second: resyncing each time would drop every copy as often.
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
    this.#epoch++
    this.#o.onResync()
  }

  /**
   * Standalone: ioredis reconnects and resubscribes by itself; the bus
   * counts as connected again once its own SUBSCRIBE (queued after
   * ioredis's) is acknowledged, not at `ready`, when it may not be yet.
   */
  #attach (sub: Redis): void {
    this.#listen(sub)
    sub.on('close', () => this.#down())
    sub.on('ready', () => {
      const epoch = this.#epoch
      sub.subscribe(this.channel).then(() => {
        if (this.#closed || epoch !== this.#epoch) return
        this.connected = true
        this.#resyncIfDown()
      }, () => {})
    })
  }

  #listen (sub: Redis): void {
    sub.on('error', (err: Error) => this.#o.log.debug({ err: err.message }, `${this.#o.name}: bus connection error`))
    sub.on('message', (channel: string, text: string) => {
      if (channel === this.channel) this.#receive(text)
    })
  }

  #down (): void {
    if (this.connected) this.#o.log.warn(`${this.#o.name}: invalidation bus disconnected${this.#o.downMessage ? `; ${this.#o.downMessage}` : ''}`)
    this.connected = false
    this.#wasDown = true
    this.#epoch++
    for (const settle of [...this.#pings]) settle(false)
  }

  #resyncIfDown (): void {
    if (this.#wasDown && !this.#closed) {
      this.#wasDown = false
      this.#o.onResync()
    }
  }

  #receive (text: string): void {
    let msg: BusEnvelope<M>
    try {
      msg = JSON.parse(text) as BusEnvelope<M>
    } catch {
      return
    }
    if (typeof msg !== 'object' || msg === null) return
    this.#o.onMessage(msg, msg.i === this.instanceId)
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
    // Not the epoch: a master lost meanwhile bumps it too (the cluster client
    // drops the nodes it cannot reach while this SUBSCRIBE waits on one of
    // them), and this subscription is still good. Only this connection
    // ending makes it stale, and its 'end' subscribes again.
    if (this.#closed || this.#node !== sub || sub.status !== 'ready') return
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

  /** The text to PUBLISH on `channel` (by the caller, usually in the same MULTI or script as the write). */
  message (payload: M): string {
    return JSON.stringify({ i: this.instanceId, ...payload })
  }

  /**
   * Resolves true once every message published (and acknowledged to its
   * sender) before this call has reached this instance's handlers: a PING on
   * the subscriber connection, whose reply Redis sends after every message
   * it queued there before. The calls of one event-loop turn share one PING.
   * Resolves false if the bus is not connected, went down meanwhile, or the
   * PONG takes longer than `ms`: the caller then cannot trust its copy.
   */
  sync (ms: number): Promise<boolean> {
    if (!this.connected || this.#closed) return Promise.resolve(false)
    return new Promise((resolve) => {
      if (this.#syncs === null) {
        this.#syncs = []
        setImmediate(this.#ping, ms)
      }
      this.#syncs.push(resolve)
    })
  }

  readonly #ping = (ms: number): void => {
    const waiting = this.#syncs ?? []
    this.#syncs = null
    const sub = this.#sub ?? this.#node
    const epoch = this.#epoch
    let settled = false
    const settle = (ok: boolean): void => {
      if (settled) return
      settled = true
      this.#pings.delete(settle)
      for (const resolve of waiting) resolve(ok)
    }
    if (sub === null || !this.connected) return settle(false)
    this.#pings.add(settle)
    withTimeout(sub.ping(), ms).then(() => settle(this.connected && this.#epoch === epoch), () => settle(false))
  }

  async close (): Promise<void> {
    this.#closed = true
    this.connected = false
    this.#epoch++
    this.#cluster?.off('-node', this.#onNodeLost)
    const sub = this.#sub ?? this.#node
    if (!sub) return
    // QUIT would wait in the offline queue of a connection that is not up (a Redis down since boot): never resolving app.close()
    if (sub.status !== 'ready') return sub.disconnect()
    await withTimeout(sub.quit(), 1000).catch(() => sub.disconnect())
  }
}
