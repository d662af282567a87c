import { RedisGuard, errors as coreErrors, type RedisClient, type RedisGuardOptions } from '@headroom/core'
import { decodeEntry, encodeEntry, expiresAt, type Entry } from './entry.js'
import { ACQUIRE, DELETE, INVALIDATE_TAGS, SET, STORE } from './scripts.js'

/** How long a key's or tag's invalidation counter outlives its last move: longer than any factory runs. */
const GEN_TTL_MS = 3_600_000

export interface L2Read {
  entry: Entry | undefined
  /** generation counters read with the entry, handed back to `store` */
  gens: string[]
}

export type Lease = { acquired: true, token: string } | { acquired: false, pttl: number }

/**
 * The shared tier. Every command goes through core's RedisGuard (bounded by
 * the command timeout, fails fast when the client is not ready, circuit
 * breaker), so an outage costs a request at most one timeout.
 */
export class L2 {
  readonly guard: RedisGuard
  readonly channel: string
  readonly #p: string

  constructor (client: RedisClient, prefix: string, guardOptions: RedisGuardOptions) {
    this.guard = new RedisGuard(client, guardOptions)
    this.#p = prefix
    this.channel = `${prefix}bus`
  }

  /**
   * Through the guard, but only while the client is connected: a client
   * still reconnecting fails here at once without counting as a failed
   * probe, so the breaker's back-off does not keep growing through an
   * outage and the first call after the reconnect closes it.
   */
  run<T> (fn: (client: RedisClient) => Promise<T>): Promise<T> {
    const status = this.guard.client.status
    if (status !== 'ready') return Promise.reject(new coreErrors.RedisUnavailable(`client is ${status}`))
    return this.guard.run(fn)
  }

  entryKey (key: string): string { return `${this.#p}e:${key}` }
  #gen (key: string): string { return `${this.#p}g:${key}` }
  #tagSet (tag: string): string { return `${this.#p}ts:${tag}` }
  #tagGen (tag: string): string { return `${this.#p}tg:${tag}` }

  async read (key: string, tags: string[]): Promise<L2Read> {
    const keys = [this.entryKey(key), this.#gen(key), ...tags.map((t) => this.#tagGen(t))]
    const values = await this.run((c) => c.mget(...keys))
    const text = values[0]
    return {
      entry: text ? decodeEntry(text) : undefined,
      gens: values.slice(1).map((v) => v ?? '')
    }
  }

  /** Conditional write of a factory's result; false when an invalidation or a newer lease holder got there first. */
  async store (key: string, entry: Entry, gens: string[], fence: string, leaseMessage: string, now: number): Promise<boolean> {
    const px = Math.max(1, expiresAt(entry) - now)
    const tags = entry.tags
    const keys = [this.entryKey(key), this.#gen(key), this.#lease(key), ...tags.map((t) => this.#tagSet(t)), ...tags.map((t) => this.#tagGen(t))]
    const args = [encodeEntry(entry), px, gens[0] ?? '', fence, tags.length, ...tags.map((_t, i) => gens[i + 1] ?? ''), this.channel, leaseMessage]
    const ok = await this.run((c) => STORE.run(c, keys, args))
    return ok === 1
  }

  async set (key: string, entry: Entry, message: string, now: number): Promise<void> {
    const px = Math.max(1, expiresAt(entry) - now)
    const keys = [this.entryKey(key), this.#gen(key), ...entry.tags.map((t) => this.#tagSet(t))]
    await this.run((c) => SET.run(c, keys, [encodeEntry(entry), px, GEN_TTL_MS, this.channel, message]))
  }

  async delete (keys: string[], message: string): Promise<void> {
    const redisKeys = keys.flatMap((k) => [this.entryKey(k), this.#gen(k)])
    await this.run((c) => DELETE.run(c, redisKeys, [GEN_TTL_MS, this.channel, message]))
  }

  async invalidateTags (tags: string[], message: string): Promise<void> {
    const redisKeys = tags.flatMap((t) => [this.#tagSet(t), this.#tagGen(t)])
    await this.run((c) => INVALIDATE_TAGS.run(c, redisKeys, [GEN_TTL_MS, this.channel, message]))
  }

  async acquire (key: string, px: number): Promise<Lease> {
    const [got, value] = await this.run((c) => ACQUIRE.run(c, [this.#lease(key), `${this.#p}fence`], [Math.ceil(px)])) as [number, number]
    return got === 1 ? { acquired: true, token: String(value) } : { acquired: false, pttl: Math.max(0, value) }
  }

  #lease (key: string): string { return `${this.#p}l:${key}` }
}
