import type { RedisClient, RedisGuard } from '@headroom/core'
import type { FastifyBaseLogger } from 'fastify'
import { apply, byteSize, decode, diff, encode, EXPIRES_FIELD, userOf, type Fields } from './codec.js'
import { TooLarge, unavailable } from './errors.js'
import type { SessionMetrics } from './metrics.js'
import { Mirror } from './mirror.js'
import { randomId } from './outages.js'
import { RedisSide, type Answer } from './redis-side.js'
import { endLoad, endWrite, startSpan, type Source } from './tracing.js'

/** the fields a request read, set on the Session object by the plugin's onRequest hook */
export const kSnapshot = Symbol('headroom.session.snapshot')

type Callback = (err?: Error | null, result?: unknown) => void
type SessionLike = object

export interface UserSession {
  /** the unsigned session id (what `request.session.sessionId` holds) */
  id: string
  expiresAt: Date
  data: Record<string, unknown>
}

export interface StoreOptions {
  client: RedisClient | null
  guard: RedisGuard | null
  keyPrefix: string
  maxAge: number
  maxSize: number
  fallbackMax: number
  probeIntervalMs: number
  /** the cap of a down node's probe back-off */
  maxProbeIntervalMs?: number
  /** hot sessions (null: off, or no Redis) */
  hot: { max: number, maxAgeMs: number } | null
  log: FastifyBaseLogger
  metrics: SessionMetrics
}

/**
 * The @fastify/session store: Redis hashes written field by field, with an
 * in-memory fallback. Redis errors never reach the request: the node that
 * failed is taken offline (on a Cluster, only the sessions of its slots go to
 * memory; on a standalone Redis, all of them), probed in the background, and
 * what was written meanwhile is written back before its sessions use Redis again.
 *
 * This file is the store contract and what decides, per session, which side
 * serves it: the memory mirror (mirror.ts) or Redis (redis-side.ts).
 */
export class HeadroomStore {
  readonly #o: StoreOptions
  readonly #mirror: Mirror
  readonly #redis: RedisSide | null

  constructor (options: StoreOptions) {
    this.#o = options
    this.#mirror = new Mirror(options.fallbackMax, options.maxAge, options.metrics, options.client !== null)
    this.#redis = options.client ? new RedisSide({ ...options, client: options.client }, this.#mirror) : null
    options.metrics.fallbackActive.set(options.client ? 0 : 1)
  }

  /** true while some sessions are served from memory: a Redis node is unavailable, or the write-back is not done (always, without Redis) */
  get fallbackActive (): boolean {
    return !this.#redis || this.#redis.backend.outages.anyDown || this.#mirror.dirty.size > 0
  }

  /** Memory serves a session while its Redis node is down, and until its write-back is done once the node is back. */
  #inMemory (id: string): boolean {
    if (!this.#redis) return true
    return (this.#mirror.dirty.size > 0 && this.#mirror.dirty.has(id)) || this.#redis.backend.isDown(id)
  }

  /** sessions written during the outage, not yet in Redis */
  get pending (): number {
    return this.#mirror.dirty.size
  }

  /** @fastify/session's `idGenerator`: during a Cluster node's outage, new sessions get ids whose slot is served by a node that is up */
  readonly newId = (): string => {
    const redis = this.#redis?.backend
    return redis ? redis.outages.newId((id) => redis.isDown(id)) : randomId()
  }

  // ---- the @fastify/session store contract ----

  get (id: string, callback: Callback): void {
    const span = startSpan('session.load')
    const answer: Answer = (source, session, fallback) => {
      endLoad(span, source, session !== null, fallback)
      callback(null, session)
    }
    const degraded = (timeoutMs?: number): void => {
      const read: { source: Source } = { source: 'memory' }
      this.#getDegraded(id, read, timeoutMs).then((s) => answer(read.source, s, true), () => answer(read.source, null, true))
    }
    if (this.#inMemory(id)) return degraded()
    this.#redis!.read(id, answer, degraded, () => this.#inMemory(id))
  }

  /**
   * A session whose node is down: what this instance wrote during the outage
   * (dirty), else the slot's replica (what the master had replicated, so the
   * other instances' sessions keep working), else this instance's copy.
   */
  async #getDegraded (id: string, read: { source: Source }, timeoutMs?: number): Promise<Record<string, unknown> | null> {
    const redis = this.#redis
    if (!redis || this.#mirror.lru.peek(id)?.dirty || !redis.backend.isDown(id)) return this.#mirror.session(id)
    const hash = await redis.backend.readReplica(id, timeoutMs)
    const adopted = hash && redis.adopt(id, hash)
    if (adopted) {
      read.source = 'replica'
      return adopted
    }
    // not on the replica but in this instance's copy (read from the master): replication lag, keep it
    return this.#mirror.session(id)
  }

  /** drops sessions this instance changes from its hot sessions, before and after the change (a read between the two may have put the old version back) */
  #invalidate (id: string): void {
    this.#redis?.invalidate([id])
  }

  set (id: string, session: SessionLike, callback: Callback): void {
    const span = startSpan('session.save')
    const fields = encode(session)
    const size = byteSize(fields)
    if (size > this.#o.maxSize) {
      // Back to what was stored: the error response's own onSend (and any later save in this
      // request) then finds the session unmodified, so the 413 is what the client gets, from the
      // app's error handler, with the previous session kept.
      revert(session, session as Record<symbol, unknown>)
      const err = new TooLarge(size, this.#o.maxSize)
      endWrite(span, this.#inMemory(id) ? 'memory' : 'redis', undefined, err)
      callback(err)
      return
    }
    const state = session as Record<symbol, unknown>
    const before = state[kSnapshot] as Fields | undefined
    if (!before) this.#o.metrics.created.inc()
    const changes = diff(before, fields)
    const expiresAt = Date.now() + this.#o.maxAge
    const done = (store: 'redis' | 'memory') => {
      // a later save in the same request (after regenerate) then writes only what changes after this one
      state[kSnapshot] = fields
      endWrite(span, store, { 'headroom.session.new': before === undefined })
      callback()
    }
    this.#invalidate(id)
    if (this.#inMemory(id)) {
      this.#mirror.write(id, before, changes, expiresAt)
      done('memory')
      return
    }
    this.#redis!.backend.save(id, before === undefined ? 'n' : 'u', changes, expiresAt, userOf(fields), userOf(before)).then(() => {
      this.#invalidate(id)
      const known = this.#mirror.lru.peek(id)
      this.#mirror.clean(id, known && before ? apply(known.fields, changes) : fields, expiresAt)
      done('redis')
    }, () => {
      this.#mirror.write(id, before, changes, expiresAt)
      done('memory')
    })
  }

  destroy (id: string, callback: Callback): void {
    const span = startSpan('session.destroy')
    this.#invalidate(id)
    if (this.#inMemory(id)) {
      const known = this.#mirror.lru.peek(id)
      if (known && !known.deleted) this.#o.metrics.destroyed.inc()
      this.#mirror.tombstone(id)
      endWrite(span, 'memory')
      callback()
      return
    }
    this.#redis!.backend.destroy(id).then((existed) => {
      // regenerate() of a never-saved session destroys an id Redis never had: not a destroyed session
      if (existed) this.#o.metrics.destroyed.inc()
      this.#invalidate(id)
      this.#mirror.lru.delete(id)
      endWrite(span, 'redis')
      callback()
    }, () => {
      this.#mirror.tombstone(id)
      endWrite(span, 'memory')
      callback()
    })
  }

  // ---- beyond the contract ----

  /** Extends the TTL of an unchanged session: PEXPIRE and its `@exp`, never a rewrite; errors only switch to the fallback. */
  async touch (id: string, userId: string | undefined): Promise<void> {
    const span = startSpan('session.touch')
    const expiresAt = Date.now() + this.#o.maxAge
    const known = this.#mirror.lru.peek(id)
    if (known) known.expiresAt = expiresAt
    this.#redis?.touchHot(id, expiresAt)
    if (this.#inMemory(id)) {
      if (known && this.#redis) this.#mirror.markDirty(id, known)
      endWrite(span, 'memory')
      return
    }
    try {
      await this.#redis!.backend.touch(id, userId, expiresAt)
      endWrite(span, 'redis')
    } catch {
      if (known) this.#mirror.markDirty(id, known)
      endWrite(span, 'memory')
    }
  }

  /** The live sessions of a user: one ZRANGE and one HGETALL per session of theirs. */
  async listUser (userId: string): Promise<UserSession[]> {
    const redis = this.#redis
    if (!redis) return this.#mirror.ofUser(userId).map(([id, e]) => ({ id, expiresAt: new Date(e.expiresAt), data: decode(e.fields) ?? {} }))
    try {
      return await redis.listUser(userId)
    } catch (err) {
      // a partial list would under-report the devices signed in: refuse instead
      throw unavailable('listing a user\'s sessions', err, this.#retryAfter)
    }
  }

  /**
   * Logs a user out everywhere: deletes each of their sessions (O(their
   * sessions)), then the index. Returns how many. Without Redis it destroys
   * the user's sessions this instance holds in memory (written back as
   * deletes when Redis returns) and then fails: sessions in Redis, or held by
   * other instances, may still be usable, so it never reports success.
   */
  async destroyUser (userId: string, except?: string): Promise<number> {
    const redis = this.#redis
    const local = this.#mirror.ofUser(userId).filter(([id]) => id !== except)
    redis?.invalidate(local.map(([id]) => id))
    for (const [id] of local) redis ? this.#mirror.tombstone(id) : this.#mirror.lru.delete(id)
    if (!redis) {
      this.#o.metrics.destroyed.inc(local.length)
      return local.length
    }
    try {
      const ids = await redis.destroyUser(userId, except)
      const count = new Set([...ids, ...local.map(([id]) => id)]).size
      this.#o.metrics.destroyed.inc(count)
      return count
    } catch (err) {
      throw unavailable('logging a user out everywhere', err, this.#retryAfter)
    }
  }

  /** seconds: by then the probe has tried Redis at least once */
  get #retryAfter (): number {
    return Math.max(1, Math.ceil(this.#o.probeIntervalMs / 1000))
  }

  /** Waits (bounded) for the client to be ready; a Redis still down after `waitMs` starts the store on the fallback. */
  async start (waitMs: number): Promise<void> {
    await this.#redis?.start(waitMs)
  }

  async close (): Promise<void> {
    await this.#redis?.close()
  }

  /** hot sessions held, and whether the bus vouches for them (tests and diagnostics) */
  get hot (): { size: number, connected: boolean } | null {
    return this.#redis?.hot ?? null
  }
}

/** Restores a session object to the fields it had when read or last saved (none, for a new one). */
function revert (session: SessionLike, state: Record<symbol, unknown>): void {
  const target = session as Record<string, unknown>
  for (const key of Object.keys(target)) if (key !== 'cookie') delete target[key]
  Object.assign(target, decode((state[kSnapshot] as Fields | undefined) ?? {}) ?? {})
}

export { EXPIRES_FIELD }
