import { LRUCache } from 'lru-cache'
import { apply, decode, userOf, type Diff, type Fields } from './codec.js'
import type { SessionMetrics } from './metrics.js'

export interface Entry {
  fields: Fields
  expiresAt: number
  /** written while its Redis node was unavailable: to be written back */
  dirty: boolean
  /** destroyed while its Redis node was unavailable: to be deleted on write-back */
  deleted: boolean
  /** bumped by every write in memory, so a write-back knows whether it wrote the latest */
  version: number
}

/**
 * The in-memory side of the store: an LRU of the sessions this instance read
 * or wrote recently (so an outage costs their users nothing), and the set of
 * those written while Redis could not take them (dirty: to be written back).
 */
export class Mirror {
  readonly lru: LRUCache<string, Entry>
  readonly dirty = new Set<string>()
  readonly #metrics: SessionMetrics
  readonly #maxAge: number
  /** false without Redis: nothing is ever written back */
  readonly #writeBack: boolean

  constructor (max: number, maxAge: number, metrics: SessionMetrics, writeBack: boolean) {
    this.#metrics = metrics
    this.#maxAge = maxAge
    this.#writeBack = writeBack
    this.lru = new LRUCache<string, Entry>({
      max,
      dispose: (entry, id, reason) => {
        if (reason === 'evict' && entry.dirty) metrics.lost.inc()
        if (reason !== 'set') this.dirty.delete(id)
      }
    })
  }

  /** a session read from (or written to) Redis: reuses the entry on the hot path, never overwrites a dirty one */
  clean (id: string, fields: Fields, expiresAt: number): void {
    const known = this.lru.get(id)
    if (known && !known.dirty && !known.deleted) {
      known.fields = fields
      known.expiresAt = expiresAt
    } else if (!known?.dirty) {
      this.lru.set(id, { fields, expiresAt, dirty: false, deleted: false, version: 0 })
    }
  }

  /** the live entry of a session, or null (unknown, destroyed or expired) */
  live (id: string): Entry | null {
    const entry = this.lru.get(id)
    if (!entry || entry.deleted || entry.expiresAt <= Date.now()) return null
    return entry
  }

  write (id: string, before: Fields | undefined, changes: Diff, expiresAt: number): void {
    const known = this.lru.peek(id)
    // the same per-field merge as in Redis, so concurrent requests on this instance lose nothing either
    const fields = known && !known.deleted && before ? apply(known.fields, changes) : { ...changes.changed }
    const entry: Entry = { fields, expiresAt, dirty: false, deleted: false, version: (known?.version ?? 0) + 1 }
    this.lru.set(id, entry)
    if (this.#writeBack) this.markDirty(id, entry)
  }

  tombstone (id: string): void {
    const entry: Entry = { fields: {}, expiresAt: Date.now() + this.#maxAge, dirty: false, deleted: true, version: (this.lru.peek(id)?.version ?? 0) + 1 }
    this.lru.set(id, entry)
    if (this.#writeBack) this.markDirty(id, entry)
  }

  markDirty (id: string, entry: Entry): void {
    if (entry.dirty) entry.version++
    entry.dirty = true
    this.dirty.add(id)
    this.#metrics.fallbackSessions.set(this.dirty.size)
  }

  /** after a write-back of `entry` at `version`: clean, unless it was written again meanwhile */
  writtenBack (id: string, entry: Entry, version: number): void {
    const current = this.lru.peek(id)
    if (current !== entry || entry.version !== version) return
    entry.dirty = false
    this.dirty.delete(id)
    if (entry.deleted) this.lru.delete(id)
    this.#metrics.fallbackSessions.set(this.dirty.size)
  }

  /** a session as @fastify/session reads it, from its fields */
  toSession (fields: Fields, expiresAt: number): Record<string, unknown> | null {
    const data = decode(fields)
    if (!data) return null
    // @fastify/session keeps `expires` as cookie.originalExpires: the plugin reads it to decide when to touch
    data.cookie = { originalMaxAge: this.#maxAge, expires: new Date(expiresAt) }
    return data
  }

  /** the session this instance holds, or null (unknown, destroyed or expired) */
  session (id: string): Record<string, unknown> | null {
    const entry = this.live(id)
    return entry ? this.toSession(entry.fields, entry.expiresAt) : null
  }

  ofUser (userId: string): Array<[string, Entry]> {
    const out: Array<[string, Entry]> = []
    const now = Date.now()
    for (const [id, entry] of this.lru.entries()) {
      if (!entry.deleted && entry.expiresAt > now && userOf(entry.fields) === userId) out.push([id, entry])
    }
    return out
  }
}
