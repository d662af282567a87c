import { InvalidationBus, type RedisClient } from '@headroom/core'
import type { FastifyBaseLogger } from 'fastify'

/** What travels on the bus: keys and tags to drop, or a key whose lease ended. Never values. */
export interface BusMessage {
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
 * The cache's side of @headroom/core's invalidation bus: invalidations from
 * other instances drop L1 entries (an instance ignores its own echo), and
 * the end of a lease wakes the instances waiting for it, this one included.
 */
export class Bus {
  readonly #bus: InvalidationBus<BusMessage>
  readonly #waiters = new Map<string, Set<() => void>>()

  constructor (client: RedisClient, channel: string, instanceId: string, handlers: BusHandlers, log: FastifyBaseLogger) {
    this.#bus = new InvalidationBus<BusMessage>(client, {
      channel,
      instanceId,
      name: '@headroom/cache',
      downMessage: 'L1 entries live at most l1.maxTtl',
      log,
      onResync: handlers.onResync,
      onMessage: (msg, own) => {
        if (msg.l !== undefined) this.#wake(msg.l)
        if (!own && (msg.k || msg.t)) handlers.onInvalidate(msg.k ?? [], msg.t ?? [])
      }
    })
  }

  get channel (): string { return this.#bus.channel }
  get instanceId (): string { return this.#bus.instanceId }
  get connected (): boolean { return this.#bus.connected }

  /** Subscribes, waiting at most `ms`; a Redis that is down at boot only delays the subscription. */
  start (ms: number): Promise<void> {
    return this.#bus.start(ms)
  }

  message (payload: BusMessage): string {
    return this.#bus.message(payload)
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
    for (const key of [...this.#waiters.keys()]) this.#wake(key)
    await this.#bus.close()
  }
}
