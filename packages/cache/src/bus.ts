import type { FastifyBaseLogger } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { withTimeout, type RedisClient } from '@headroom/core'

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
 * The invalidation bus: Redis pub/sub on a subscriber connection of its own,
 * duplicated from the app's client (a subscribed connection can run no
 * other command). Also wakes instances waiting for another instance's lease.
 */
export class Bus {
  readonly #sub: RedisClient
  readonly #waiters = new Map<string, Set<() => void>>()
  #wasDown = false
  #closed = false
  connected = false

  constructor (client: RedisClient, readonly channel: string, readonly instanceId: string, handlers: BusHandlers, log: FastifyBaseLogger) {
    // the subscriber may queue SUBSCRIBE until it connects: nothing on the request path waits for it
    const subscriberOptions = { enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false }
    this.#sub = (client as { isCluster?: boolean }).isCluster
      ? (client as Cluster).duplicate(undefined, { enableOfflineQueue: true, redisOptions: subscriberOptions })
      : (client as Redis).duplicate(subscriberOptions)
    this.#sub.on('error', (err: Error) => log.debug({ err: err.message }, '@headroom/cache: bus connection error'))
    this.#sub.on('close', () => {
      if (this.connected) log.warn('@headroom/cache: invalidation bus disconnected; L1 entries live at most l1.maxTtl')
      this.connected = false
      this.#wasDown = true
    })
    this.#sub.on('ready', () => {
      // ioredis resubscribes by itself on reconnect
      this.connected = true
      if (this.#wasDown && !this.#closed) {
        this.#wasDown = false
        handlers.onResync()
      }
    })
    this.#sub.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return
      let msg: BusMessage
      try {
        msg = JSON.parse(text) as BusMessage
      } catch {
        return
      }
      if (msg.l !== undefined) this.#wake(msg.l)
      if (msg.i === this.instanceId) return
      if (msg.k || msg.t) handlers.onInvalidate(msg.k ?? [], msg.t ?? [])
    })
  }

  /** Subscribes, waiting at most `ms`; a Redis that is down at boot only delays the subscription. */
  async start (ms: number): Promise<void> {
    try {
      await withTimeout(this.#sub.subscribe(this.channel), ms)
      this.connected = true
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
    await this.#sub.quit().catch(() => this.#sub.disconnect())
  }
}
