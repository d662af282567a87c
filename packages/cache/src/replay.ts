import type { FastifyBaseLogger } from 'fastify'

const MAX_REPLAY_BATCH = 200
const REPLAY_INTERVAL_MS = 500

export interface ReplayTarget {
  /** whether Redis can take a replay now (connected, circuit not open) */
  ready (): boolean
  deleteKeys (keys: string[]): Promise<void>
  invalidateTags (tags: string[]): Promise<void>
}

/**
 * Invalidations that did not reach Redis, or not enough replicas, applied
 * again every 500 ms until they go through. Deletes and tag invalidations
 * are idempotent, so applying one twice is harmless. Bounded: beyond `limit`
 * the oldest are dropped, and their entries end by TTL.
 */
export class ReplayQueue {
  readonly #keys = new Set<string>()
  readonly #tags = new Set<string>()
  #timer: NodeJS.Timeout | undefined

  constructor (readonly limit: number, readonly target: ReplayTarget, readonly log: FastifyBaseLogger) {}

  get size (): number {
    return this.#keys.size + this.#tags.size
  }

  /** Whether an invalidation of `key` or of one of `tags` is still waiting to reach Redis. */
  pending (key: string, tags: readonly string[]): boolean {
    return this.#keys.has(key) || tags.some((tag) => this.#tags.has(tag))
  }

  add (keys: string[], tags: string[]): void {
    for (const key of keys) this.#keys.add(key)
    for (const tag of tags) this.#tags.add(tag)
    while (this.size > this.limit) {
      const first = this.#keys.size > 0 ? this.#keys : this.#tags
      first.delete(first.values().next().value as string)
      this.log.warn('@headroom/cache: invalidation replay queue full; dropped the oldest (its entry expires by its TTL)')
    }
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => { this.#flush().catch(() => {}) }, REPLAY_INTERVAL_MS)
      this.#timer.unref()
    }
  }

  async #flush (): Promise<void> {
    if (!this.target.ready()) return
    const keys = [...this.#keys].slice(0, MAX_REPLAY_BATCH)
    const tags = [...this.#tags].slice(0, MAX_REPLAY_BATCH)
    if (keys.length > 0) {
      await this.target.deleteKeys(keys)
      for (const key of keys) this.#keys.delete(key)
    }
    if (tags.length > 0) {
      await this.target.invalidateTags(tags)
      for (const tag of tags) this.#tags.delete(tag)
    }
    if (this.size === 0) this.stop()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}
