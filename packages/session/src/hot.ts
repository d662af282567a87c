import { LRUCache } from 'lru-cache'
import type { Fields } from './codec.js'
import type { SessionMetrics } from './metrics.js'

export interface HotEntry {
  fields: Fields
  /** the session's expiry when it was read: a hit past it is a miss */
  expiresAt: number
}

/**
 * Hot sessions: the ones this instance read from Redis recently, served
 * again without a Redis read while the invalidation bus vouches for them.
 * Bounded by count (LRU) and by age (a safety net, not the invalidation).
 * Every invalidation and resync bumps `seq`: a read that started before one
 * does not put what it read here, since it may be what was invalidated.
 */
export class HotSessions {
  readonly #lru: LRUCache<string, HotEntry>
  readonly #metrics: SessionMetrics
  #seq = 0

  constructor (max: number, maxAgeMs: number, metrics: SessionMetrics) {
    this.#metrics = metrics
    this.#lru = new LRUCache<string, HotEntry>({ max, ttl: maxAgeMs })
  }

  get seq (): number {
    return this.#seq
  }

  get size (): number {
    return this.#lru.size
  }

  get (id: string): HotEntry | undefined {
    return this.#lru.get(id)
  }

  /** what a read that started at `seq` found; dropped if anything was invalidated since */
  put (id: string, entry: HotEntry, seq: number): void {
    if (seq === this.#seq) this.#lru.set(id, entry)
  }

  /** a touch on this instance: the entry's expiry follows (other instances' copies keep theirs until they age out) */
  touch (id: string, expiresAt: number): void {
    const entry = this.#lru.peek(id)
    if (entry) entry.expiresAt = expiresAt
  }

  invalidate (ids: readonly string[]): void {
    this.#seq++
    for (const id of ids) this.#lru.delete(id)
    this.#metrics.hotInvalidations.inc(ids.length)
  }

  /** the bus was down: any entry may have missed its invalidation */
  clear (): void {
    this.#seq++
    this.#lru.clear()
    this.#metrics.hotResyncs.inc()
  }
}
