import { LRUCache } from 'lru-cache'
import { expiresAt, type Entry } from './entry.js'

export interface L1Bounds {
  maxBytes: number
  maxEntries: number
  maxEntryBytes: number
  maxTtl: number
}

/**
 * The in-process tier: an LRU bounded by entries and by the bytes of the
 * serialized values, with an index from tag to keys so tag invalidations
 * drop exactly the entries that carry the tag. Deadlines are checked
 * against the cache's own clock (not lru-cache's), so trace replays and
 * tests can move time.
 */
export class L1 {
  readonly #lru: LRUCache<string, Entry>
  readonly #tags = new Map<string, Set<string>>()
  readonly #bounds: L1Bounds

  constructor (bounds: L1Bounds) {
    this.#bounds = bounds
    this.#lru = new LRUCache<string, Entry>({
      max: bounds.maxEntries,
      maxSize: bounds.maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.size),
      dispose: (entry, key) => this.#untag(key, entry)
    })
  }

  get bytes (): number { return this.#lru.calculatedSize }
  get entries (): number { return this.#lru.size }

  get (key: string, now: number): Entry | undefined {
    const entry = this.#lru.get(key)
    if (entry === undefined) return undefined
    if (now >= entry.l1Until!) {
      this.#lru.delete(key)
      return undefined
    }
    return entry
  }

  /** Stores `entry`, for no longer than its remaining life and the L1 cap. Too-big values are not kept. */
  set (key: string, entry: Entry, now: number): void {
    if (entry.size > this.#bounds.maxEntryBytes) {
      this.#lru.delete(key)
      return
    }
    const until = Math.min(expiresAt(entry), now + this.#bounds.maxTtl)
    if (until <= now) {
      this.#lru.delete(key)
      return
    }
    this.#lru.set(key, { ...entry, l1Until: until })
    for (const tag of entry.tags) {
      let keys = this.#tags.get(tag)
      if (!keys) this.#tags.set(tag, keys = new Set())
      keys.add(key)
    }
  }

  delete (key: string): void {
    this.#lru.delete(key)
  }

  /** Drops every entry that carries one of `tags`. */
  deleteTags (tags: Iterable<string>): void {
    for (const tag of tags) {
      const keys = this.#tags.get(tag)
      if (!keys) continue
      for (const key of [...keys]) this.#lru.delete(key)
      this.#tags.delete(tag)
    }
  }

  clear (): void {
    this.#lru.clear()
    this.#tags.clear()
  }

  /** every key in L1, for tests and diagnostics */
  keys (): string[] {
    return [...this.#lru.keys()]
  }

  #untag (key: string, entry: Entry): void {
    for (const tag of entry.tags) {
      const keys = this.#tags.get(tag)
      if (!keys) continue
      keys.delete(key)
      if (keys.size === 0) this.#tags.delete(tag)
    }
  }
}
