import { InvalidationBus, type RedisClient, type RedisGuard } from '@headroom/core'
import type { FastifyBaseLogger } from 'fastify'
import { RedisBackend } from './backend.js'
import { apply, byteSize, decode, diff, encode, EXPIRES_FIELD, fromHash, userOf, type Fields } from './codec.js'
import { TooLarge, unavailable } from './errors.js'
import { HotSessions, type HotEntry } from './hot.js'
import type { SessionMetrics } from './metrics.js'
import { Mirror } from './mirror.js'
import { randomId } from './outages.js'
import { endLoad, endWrite, startSpan, type Source } from './tracing.js'

/** the fields a request read, set on the Session object by the plugin's onRequest hook */
export const kSnapshot = Symbol('headroom.session.snapshot')

/** sessions written back in parallel per round trip once Redis returns */
const WRITE_BACK_BATCH = 64

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

/** what the session store publishes: the ids of sessions that changed or were destroyed */
interface HotMessage { k: string[] }

/**
 * The @fastify/session store: Redis hashes written field by field, with an
 * in-memory fallback. Redis errors never reach the request: the node that
 * failed is taken offline (on a Cluster, only the sessions of its slots go to
 * memory; on a standalone Redis, all of them), probed in the background, and
 * what was written meanwhile is written back before its sessions use Redis again.
 */
export class HeadroomStore {
  readonly #o: StoreOptions
  readonly #mirror: Mirror
  readonly #redis: RedisBackend | null
  readonly #hot: HotSessions | null = null
  readonly #bus: InvalidationBus<HotMessage> | null = null
  #probe: NodeJS.Timeout | null = null
  #recovering = false
  #closed = false

  constructor (options: StoreOptions) {
    this.#o = options
    this.#mirror = new Mirror(options.fallbackMax, options.maxAge, options.metrics, options.client !== null)
    this.#redis = options.client
      ? new RedisBackend(options.client, {
        keyPrefix: options.keyPrefix,
        maxAge: options.maxAge,
        commandTimeoutMs: options.guard?.commandTimeoutMs ?? 250,
        probeIntervalMs: options.probeIntervalMs,
        maxProbeIntervalMs: options.maxProbeIntervalMs ?? options.probeIntervalMs,
        log: options.log,
        metrics: options.metrics,
        onDown: () => this.#ensureProbe()
      })
      : null
    options.metrics.fallbackActive.set(options.client ? 0 : 1)
    // Not on a Redis Cluster: a PUBLISH reaches subscribers on other nodes over the cluster bus,
    // asynchronously, so the PING that orders a hot read after every earlier invalidation
    // vouches only for messages its own node already had (seen as stale reads in a failover).
    if (this.#redis && options.hot && !this.#redis.outages.cluster) {
      const hot = this.#hot = new HotSessions(options.hot.max, options.hot.maxAgeMs, options.metrics)
      const bus = this.#bus = new InvalidationBus<HotMessage>(this.#redis.client, {
        channel: `${options.keyPrefix}bus`,
        name: '@headroom/session',
        downMessage: 'sessions are read from Redis until it is back',
        log: options.log,
        onMessage: (msg, own) => { if (!own && Array.isArray(msg.k)) hot.invalidate(msg.k) },
        onResync: () => {
          hot.clear()
          options.log.info('@headroom/session: invalidation bus back; hot sessions dropped since messages may have been lost')
        }
      })
      this.#redis.publisher = { channel: bus.channel, message: (ids) => bus.message({ k: ids }) }
    }
  }

  /** true while some sessions are served from memory: a Redis node is unavailable, or the write-back is not done (always, without Redis) */
  get fallbackActive (): boolean {
    return !this.#redis || this.#redis.outages.anyDown || this.#mirror.dirty.size > 0
  }

  /** Memory serves a session while its Redis node is down, and until its write-back is done once the node is back. */
  #inMemory (id: string): boolean {
    if (!this.#redis) return true
    return (this.#mirror.dirty.size > 0 && this.#mirror.dirty.has(id)) || this.#redis.isDown(id)
  }

  /** sessions written during the outage, not yet in Redis */
  get pending (): number {
    return this.#mirror.dirty.size
  }

  /** @fastify/session's `idGenerator`: during a Cluster node's outage, new sessions get ids whose slot is served by a node that is up */
  readonly newId = (): string => {
    const redis = this.#redis
    return redis ? redis.outages.newId((id) => redis.isDown(id)) : randomId()
  }

  // ---- the @fastify/session store contract ----

  get (id: string, callback: Callback): void {
    const span = startSpan('session.load')
    const answer = (source: Source, session: Record<string, unknown> | null, fallback: boolean): void => {
      endLoad(span, source, session !== null, fallback)
      callback(null, session)
    }
    const degraded = (timeoutMs?: number): void => {
      const read: { source: Source } = { source: 'memory' }
      this.#getDegraded(id, read, timeoutMs).then((s) => answer(read.source, s, true), () => answer(read.source, null, true))
    }
    if (this.#inMemory(id)) return degraded()
    const start = Date.now()
    // after a bus sync that failed, the read gets what is left of one command timeout: one request, one timeout
    const fromRedis = (timeoutMs?: number): void => {
      const seq = this.#hot?.seq
      ;(this.#redis as RedisBackend).read(id, timeoutMs).then((hash) => {
        answer('redis', this.#adopt(id, hash, seq), false)
      }, () => {
        // the read that found the node down: the replica within what is left of the timeout
        degraded((this.#redis as RedisBackend).remaining(start))
      })
    }
    const hot = this.#hot
    const entry = hot !== null && this.#bus!.connected ? hot.get(id) : undefined
    if (entry === undefined) {
      if (hot !== null) this.#o.metrics.hotMisses.inc()
      return fromRedis()
    }
    // Served only once the bus has delivered every invalidation published before this request
    // arrived: a logout acknowledged on another instance is never honoured here afterwards.
    // The sync gets half a command timeout, so that a read after a failed sync still has
    // the other half: one request, one timeout (a frozen Redis cost 250 + 56 ms with a full one).
    this.#bus!.sync(Math.ceil((this.#o.guard?.commandTimeoutMs ?? 250) / 2)).then((vouched) => {
      if (vouched && hot!.get(id) === entry && entry.expiresAt > Date.now() && !this.#inMemory(id)) {
        this.#o.metrics.hotHits.inc()
        this.#mirror.lru.get(id)
        answer('hot', this.#toSession(entry.fields, entry.expiresAt), false)
        return
      }
      this.#o.metrics.hotMisses.inc()
      if (this.#inMemory(id)) degraded()
      else fromRedis((this.#redis as RedisBackend).remaining(start))
    })
  }

  /**
   * A session whose node is down: what this instance wrote during the outage
   * (dirty), else the slot's replica (what the master had replicated, so the
   * other instances' sessions keep working), else this instance's copy.
   */
  async #getDegraded (id: string, read: { source: Source }, timeoutMs?: number): Promise<Record<string, unknown> | null> {
    const redis = this.#redis
    if (!redis || this.#mirror.lru.peek(id)?.dirty || !redis.isDown(id)) return this.#fromMemory(id)
    const hash = await redis.readReplica(id, timeoutMs)
    const adopted = hash && this.#adopt(id, hash)
    if (adopted) {
      read.source = 'replica'
      return adopted
    }
    // not on the replica but in this instance's copy (read from the master): replication lag, keep it
    return this.#fromMemory(id)
  }

  /** a session read from Redis (or a replica): kept for the fallback, and as a hot session when read from the master with nothing invalidated since `seq` */
  #adopt (id: string, hash: Record<string, string>, seq?: number): Record<string, unknown> | null {
    const stored = fromHash(hash)
    if (!stored) return null
    this.#mirror.clean(id, stored.fields, stored.expiresAt)
    if (seq !== undefined && this.#bus!.connected) this.#hot!.put(id, stored satisfies HotEntry, seq)
    return this.#toSession(stored.fields, stored.expiresAt)
  }

  /** drops sessions this instance changes from its hot sessions, before and after the change (a read between the two may have put the old version back) */
  #invalidate (id: string): void {
    this.#hot?.invalidate([id])
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
    ;(this.#redis as RedisBackend).save(id, before === undefined ? 'n' : 'u', changes, expiresAt, userOf(fields), userOf(before)).then(() => {
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
    ;(this.#redis as RedisBackend).destroy(id).then((existed) => {
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
    this.#hot?.touch(id, expiresAt)
    if (this.#inMemory(id)) {
      if (known && this.#redis) this.#mirror.markDirty(id, known)
      endWrite(span, 'memory')
      return
    }
    try {
      await (this.#redis as RedisBackend).touch(id, userId, expiresAt)
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
      const key = redis.userKey(userId)
      const ids = await redis.run(key, (c) => c.zrange(key, '0', '-1'))
      const hashes = await Promise.all(ids.map((id) => redis.run(redis.sessionKey(id), (c) => c.hgetall(redis.sessionKey(id)))))
      const out: UserSession[] = []
      const gone: string[] = []
      ids.forEach((id, i) => {
        const stored = fromHash(hashes[i] ?? {})
        const data = stored && userOf(stored.fields) === userId ? decode(stored.fields) : null
        if (stored && data) out.push({ id, expiresAt: new Date(stored.expiresAt), data })
        else gone.push(id)
      })
      // index entries of sessions that expired or moved to another user are pruned as they are found
      if (gone.length > 0) await redis.run(key, (c) => c.zrem(key, ...gone))
      return out
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
    this.#hot?.invalidate(local.map(([id]) => id))
    for (const [id] of local) redis ? this.#mirror.tombstone(id) : this.#mirror.lru.delete(id)
    if (!redis) {
      this.#o.metrics.destroyed.inc(local.length)
      return local.length
    }
    try {
      const key = redis.userKey(userId)
      const ids = (await redis.run(key, (c) => c.zrange(key, '0', '-1'))).filter((id) => id !== except)
      // one command per session: their keys live in different Cluster slots
      this.#hot?.invalidate(ids)
      await Promise.all(ids.map((id) => redis.unlink(id)))
      if (ids.length > 0) await redis.run(key, (c) => c.zrem(key, ...ids))
      this.#hot?.invalidate(ids)
      for (const id of ids) this.#mirror.lru.delete(id)
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
    await Promise.all([this.#redis?.start(waitMs), this.#bus?.start(waitMs)])
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#redis?.close()
    if (this.#probe) clearInterval(this.#probe)
    this.#probe = null
    await this.#bus?.close()
  }

  /** hot sessions held, and whether the bus vouches for them (tests and diagnostics) */
  get hot (): { size: number, connected: boolean } | null {
    return this.#hot && { size: this.#hot.size, connected: this.#bus!.connected }
  }

  // ---- recovery ----

  #ensureProbe (): void {
    if (this.#probe || this.#closed) return
    this.#probe = setInterval(() => { this.#recover() }, this.#o.probeIntervalMs)
    this.#probe.unref()
  }

  /**
   * Each probe: the down nodes that are due are probed; then the sessions
   * written during the outage whose node is up are written back, in batches
   * (so the write-back keeps up with traffic that keeps writing them), and
   * served from memory until then.
   */
  #recover (): void {
    if (this.#recovering || this.#closed) return
    this.#recovering = true
    const redis = this.#redis as RedisBackend
    const run = async () => {
      await redis.probe()
      let written = 0
      for (;;) {
        const batch = [...this.#mirror.dirty].filter((id) => !redis.isDown(id)).slice(0, WRITE_BACK_BATCH)
        if (batch.length === 0) break
        const results = await Promise.allSettled(batch.map((id) => this.#writeBack(id)))
        written += results.filter((r) => r.status === 'fulfilled').length
        if (results.some((r) => r.status === 'rejected')) break
      }
      if (redis.outages.anyDown || this.#mirror.dirty.size > 0) return
      if (this.#probe) clearInterval(this.#probe)
      this.#probe = null
      this.#o.metrics.fallbackActive.set(0)
      this.#o.metrics.fallbackSessions.set(0)
      this.#o.log.info({ writtenBack: written }, '@headroom/session: Redis is back, sessions written during the outage were written back')
    }
    run().catch(() => { this.#o.metrics.redisErrors.inc() }).finally(() => { this.#recovering = false })
  }

  async #writeBack (id: string): Promise<void> {
    const entry = this.#mirror.lru.peek(id)
    if (!entry || !entry.dirty) {
      this.#mirror.dirty.delete(id)
      return
    }
    const version = entry.version
    const redis = this.#redis as RedisBackend
    this.#invalidate(id)
    if (entry.deleted) {
      await redis.destroy(id)
    } else {
      // replace: what this instance held during the outage is the newest version of the session
      await redis.save(id, 'r', { changed: entry.fields, removed: [] }, entry.expiresAt, userOf(entry.fields), undefined)
    }
    this.#o.metrics.writtenBack.inc()
    // written again while this write-back was in flight (a write replaces the entry): the next batch takes the newer version
    this.#mirror.writtenBack(id, entry, version)
  }

  // ---- memory ----

  #fromMemory (id: string): Record<string, unknown> | null {
    const entry = this.#mirror.live(id)
    return entry ? this.#toSession(entry.fields, entry.expiresAt) : null
  }

  #toSession (fields: Fields, expiresAt: number): Record<string, unknown> | null {
    const data = decode(fields)
    if (!data) return null
    // @fastify/session keeps `expires` as cookie.originalExpires: the plugin reads it to decide when to touch
    data.cookie = { originalMaxAge: this.#o.maxAge, expires: new Date(expiresAt) }
    return data
  }
}

/** Restores a session object to the fields it had when read or last saved (none, for a new one). */
function revert (session: SessionLike, state: Record<symbol, unknown>): void {
  const target = session as Record<string, unknown>
  for (const key of Object.keys(target)) if (key !== 'cookie') delete target[key]
  Object.assign(target, decode((state[kSnapshot] as Fields | undefined) ?? {}) ?? {})
}

export { EXPIRES_FIELD }
