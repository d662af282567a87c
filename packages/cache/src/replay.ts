import type { FastifyBaseLogger } from 'fastify'

const MAX_REPLAY_BATCH = 200
const REPLAY_INTERVAL_MS = 500

export interface ReplayTarget {
  /** whether Redis can take a replay now (connected, circuit not open) */
  ready (): boolean
  /** applies the deletes (and drops from L1 what was read meanwhile); the queue forgets them once it resolves */
  deleteKeys (keys: string[]): Promise<void>
  invalidateTags (tags: string[]): Promise<void>
}

/**
 * Invalidations that did not reach Redis, or not enough replicas, applied
 * again every 500 ms until they go through. Deletes and tag invalidations
 * are idempotent, so applying one twice is harmless. Bounded: beyond `limit`
 * the oldest are dropped, and their entries end by TTL.
 *
 * It also remembers when each key and tag still queued was invalidated:
 * until the replay reaches Redis, an L2 entry created before that is the
 * value the invalidation removes, so no read uses it (an instance ignores its
 * own bus messages, so nothing else would drop it from L1 afterwards).
 */
export class ReplayQueue {
  readonly #keys = new Set<string>()
  readonly #tags = new Set<string>()
  /** when each queued key (`k:`) and tag (`t:`) was invalidated */
  readonly #times = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined

  constructor (readonly limit: number, readonly target: ReplayTarget, readonly log: FastifyBaseLogger) {}

  get size (): number {
    return this.#keys.size + this.#tags.size
  }

  /** Whether an invalidation of `key` or of one of `tags` is still waiting to reach Redis. */
  pending (key: string, tags: readonly string[]): boolean {
    return this.#keys.has(key) || tags.some((tag) => this.#tags.has(tag))
  }

  /** Whether an L2 entry created at `createdAt` is what a queued invalidation of `key` or one of `tags` removes. */
  invalidatedSince (key: string, tags: readonly string[], createdAt: number): boolean {
    if (this.#times.size === 0 || !this.pending(key, tags)) return false
    const times = [this.#times.get(`k:${key}`), ...tags.map((tag) => this.#times.get(`t:${tag}`))]
    return times.some((at) => at !== undefined && createdAt <= at)
  }

  /** Queues invalidations made at `at`. */
  add (keys: string[], tags: string[], at: number): void {
    for (const key of keys) {
      this.#keys.add(key)
      this.#times.set(`k:${key}`, at)
    }
    for (const tag of tags) {
      this.#tags.add(tag)
      this.#times.set(`t:${tag}`, at)
    }
    while (this.size > this.limit) {
      const first = this.#keys.size > 0 ? this.#keys : this.#tags
      first.delete(first.values().next().value as string)
      this.log.warn('@headroom/cache: invalidation replay queue full; dropped the oldest (its entry expires by its TTL)')
    }
    // the queue drops its oldest when full: forget the times of what it no longer holds
    if (this.#times.size > 2 * this.limit) this.#pruneTimes()
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
      for (const key of keys) {
        this.#keys.delete(key)
        this.#times.delete(`k:${key}`)
      }
    }
    if (tags.length > 0) {
      await this.target.invalidateTags(tags)
      for (const tag of tags) {
        this.#tags.delete(tag)
        this.#times.delete(`t:${tag}`)
      }
    }
    if (this.size === 0) this.stop()
  }

  #pruneTimes (): void {
    for (const name of this.#times.keys()) {
      const queued = name.startsWith('k:') ? this.#keys.has(name.slice(2)) : this.#tags.has(name.slice(2))
      if (!queued) this.#times.delete(name)
    }
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}
