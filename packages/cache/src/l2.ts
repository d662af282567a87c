import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { withTimeout, type RedisClient, type RedisGuard } from '@headroom/core'
import { decodeEntry, encodeEntry, expiresAt, type Entry } from './entry.js'
import { ACQUIRE, BUMP_TAG, DELETE, ENROL, SET, STORE } from './scripts.js'

/** How long a key's or tag's invalidation counter outlives its last move: longer than any factory runs. */
const GEN_TTL_MS = 3_600_000
/** entries deleted by one script call on a single Redis (on a cluster, one call per entry: one slot each) */
const DELETE_BATCH = 250
/** script calls in flight at once while a tag invalidation deletes its members */
const DELETE_CONCURRENCY = 64

export interface L2Read {
  entry: Entry | undefined
  /** generation counters read with the entry (key, then each tag), handed back to `store` */
  gens: string[]
}

export type Lease = { acquired: true, token: string } | { acquired: false, pttl: number }

/**
 * `{`, `}` and `%` escaped: the result is a hash tag that is never empty or
 * cut short by a brace in the key, and different keys stay different.
 */
export function slotTag (s: string): string {
  return /[{}%]/.test(s) ? s.replace(/%/g, '%25').replace(/\{/g, '%7B').replace(/\}/g, '%7D') : s
}

/**
 * The shared tier. Every command goes through the plugin's RedisGuard, from
 * core's useRedis (bounded by the command timeout, fails fast when the
 * client is not ready, circuit breaker), so an outage costs a request at
 * most one timeout.
 *
 * Slot layout: an entry's keys (`e:`, `g:` generation, `l:` lease) share the
 * hash tag `{<scoped key>}`, a tag's keys (`ts:` member set, `tg:`
 * generation) share `{<tag>}`. Each script touches one of these groups only,
 * so it runs on a Redis Cluster, and entries spread over every slot.
 */
export class L2 {
  readonly guard: RedisGuard
  readonly channel: string
  readonly #p: string
  readonly #cluster: boolean
  readonly #tokenBase = randomBytes(6).toString('base64url')
  #tokens = 0

  readonly #replicas: number

  constructor (guard: RedisGuard, prefix: string, waitForReplicas = 0) {
    this.guard = guard
    this.#replicas = waitForReplicas
    this.#p = prefix
    this.#cluster = (guard.client as { isCluster?: boolean }).isCluster === true
    this.channel = `${prefix}bus`
  }

  /**
   * Through the guard: a client still reconnecting fails at once without
   * counting as a failed probe, so the breaker's back-off does not keep
   * growing through an outage and the first call after the reconnect closes it.
   */
  run<T> (fn: (client: RedisClient) => Promise<T>): Promise<T> {
    return this.guard.run(fn)
  }

  /** the Redis key of an entry (for tests and diagnostics) */
  entryKey (key: string): string { return this.#entry(slotTag(key)) }
  #entry (member: string): string { return `${this.#p}e:{${member}}` }
  #gen (member: string): string { return `${this.#p}g:{${member}}` }
  #lease (member: string): string { return `${this.#p}l:{${member}}` }
  #tagSet (tag: string): string { return `${this.#p}ts:{${slotTag(tag)}}` }
  #tagGen (tag: string): string { return `${this.#p}tg:{${slotTag(tag)}}` }

  async read (key: string, tags: string[]): Promise<L2Read> {
    const m = slotTag(key)
    // one command per slot, sent together: one round trip
    const [[text, gen], ...tagGens] = await Promise.all([
      this.run((c) => c.mget(this.#entry(m), this.#gen(m))),
      ...tags.map((t) => this.run((c) => c.get(this.#tagGen(t))).then((v) => [v]))
    ])
    return {
      entry: text ? decodeEntry(text) : undefined,
      gens: [gen ?? '', ...tagGens.map(([v]) => v ?? '')]
    }
  }

  /**
   * Conditional write of a factory's result; false when an invalidation or a
   * newer lease holder got there first. The entry joins its tags' sets
   * first, each only if the tag's generation is still the one read at the
   * miss; then the entry is written only if its own generation has not moved
   * (a tag invalidation that ran in between found it and moved it).
   */
  async store (key: string, entry: Entry, gens: string[], fence: string, leaseMessage: string, now: number): Promise<boolean> {
    const m = slotTag(key)
    const px = Math.max(1, expiresAt(entry) - now)
    // without tags, no await before the write: it leaves in the same tick as the factory's result
    const enrolled = entry.tags.length === 0 || (await Promise.all(entry.tags.map((t, i) =>
      this.run((c) => ENROL.run(c, [this.#tagSet(t), this.#tagGen(t)], [m, px, gens[i + 1] ?? ''])))))
      .every((ok) => ok === 1)
    const payload = enrolled ? encodeEntry(entry) : ''
    if (payload === '' && fence === '') return false
    const ok = await this.run((c) => STORE.run(c, [this.#entry(m), this.#gen(m), this.#lease(m)], [payload, px, gens[0] ?? '', fence, this.channel, leaseMessage]))
    return ok === 1
  }

  /** Gives up a lease without writing, and wakes the waiters. */
  async release (key: string, fence: string, leaseMessage: string): Promise<void> {
    const m = slotTag(key)
    await this.run((c) => STORE.run(c, [this.#entry(m), this.#gen(m), this.#lease(m)], ['', 1, '', fence, this.channel, leaseMessage]))
  }

  async set (key: string, entry: Entry, message: string, now: number): Promise<void> {
    const m = slotTag(key)
    const px = Math.max(1, expiresAt(entry) - now)
    if (entry.tags.length > 0) await Promise.all(entry.tags.map((t) => this.run((c) => ENROL.run(c, [this.#tagSet(t), this.#tagGen(t)], [m, px]))))
    await this.run((c) => SET.run(c, [this.#entry(m), this.#gen(m)], [encodeEntry(entry), px, GEN_TTL_MS, this.channel, message]))
  }

  async delete (keys: string[], message: string): Promise<void> {
    await this.#deleteMembers(keys.map(slotTag), message)
  }

  /**
   * Moves each tag's generation and reads its members (one script per tag),
   * deletes the members wherever their slots are, then removes them from the
   * sets. Members of a tag may span every slot: each is reached.
   */
  async invalidateTags (tags: string[], message: string): Promise<void> {
    const members = await Promise.all(tags.map((t) => this.run((c) => BUMP_TAG.run(c, [this.#tagSet(t), this.#tagGen(t)], [GEN_TTL_MS])) as Promise<string[]>))
    await this.#deleteMembers([...new Set(members.flat())], message)
    await Promise.all(tags.map((t, i) => this.#chunks(members[i]!, 500).map((chunk) => this.run((c) => c.srem(this.#tagSet(t), ...chunk)))).flat())
  }

  /** Deletes entries and moves their generations: per slot on a cluster, in batches on a single Redis; publishes once all are gone. */
  async #deleteMembers (members: string[], message: string): Promise<void> {
    const groups = this.#cluster ? members.map((m) => [m]) : this.#chunks(members, DELETE_BATCH)
    // a single call publishes itself; otherwise (none, or several slots) publish once all are done
    const inOne = groups.length === 1
    for (let i = 0; i < groups.length; i += DELETE_CONCURRENCY) {
      await Promise.all(groups.slice(i, i + DELETE_CONCURRENCY).map((group) => {
        const keys = group.flatMap((m) => [this.#entry(m), this.#gen(m)])
        return this.run((c) => DELETE.run(c, keys, [GEN_TTL_MS, this.channel, inOne ? message : '']))
      }))
    }
    // after every delete, so an instance that drops its L1 copy cannot read the old value back from L2
    if (!inOne && message !== '') await this.run((c) => c.publish(this.channel, message))
  }

  /**
   * True when `waitForReplicas` replicas hold every write this client has
   * sent: WAIT on each master's connection (the one the writes went
   * through), bounded by the command timeout. Replication is asynchronous,
   * so without this a failover can lose an acknowledged invalidation.
   */
  async replicated (): Promise<boolean> {
    if (this.#replicas === 0) return true
    const client = this.guard.client
    const masters: Redis[] = this.#cluster ? (client as Cluster).nodes('master') : [client as Redis]
    // the server answers at half the command timeout; a slow or lost answer counts as no replica, not as a Redis failure
    const ms = Math.max(1, Math.floor(this.guard.commandTimeoutMs / 2))
    const acks = await Promise.all(masters.map((m) => m.status === 'ready' ? withTimeout(m.wait(this.#replicas, ms), this.guard.commandTimeoutMs).catch(() => 0) : 0))
    return acks.every((n) => n >= this.#replicas)
  }

  async acquire (key: string, px: number): Promise<Lease> {
    const token = `${this.#tokenBase}.${(++this.#tokens).toString(36)}`
    const [got, value] = await this.run((c) => ACQUIRE.run(c, [this.#lease(slotTag(key))], [Math.ceil(px), token])) as [number, number | string]
    return got === 1 ? { acquired: true, token: String(value) } : { acquired: false, pttl: Math.max(0, Number(value)) }
  }

  #chunks<T> (items: T[], size: number): T[][] {
    const out: T[][] = []
    for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
    return out
  }
}
