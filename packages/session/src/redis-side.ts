import { InvalidationBus } from '@headroom/core'
import { RedisBackend } from './backend.js'
import { decode, fromHash, userOf } from './codec.js'
import { HotSessions, type HotEntry } from './hot.js'
import type { Mirror } from './mirror.js'
import type { StoreOptions, UserSession } from './store.js'
import type { Source } from './tracing.js'

/** sessions written back in parallel per round trip once Redis returns */
const WRITE_BACK_BATCH = 64

/** what the session store publishes: the ids of sessions that changed or were destroyed */
interface HotMessage { k: string[] }

/** How a read ends: where the session came from, the session (null: none), whether it was a fallback read. */
export type Answer = (source: Source, session: Record<string, unknown> | null, fallback: boolean) => void

/**
 * The store's Redis side: the backend (each command bounded and routed to
 * its node, see RedisBackend), the hot sessions and their invalidation bus,
 * the user index, and the recovery: once a down node is back, what was
 * written in memory meanwhile is written back before its sessions use Redis
 * again.
 */
export class RedisSide {
  readonly backend: RedisBackend
  readonly #o: StoreOptions & { client: NonNullable<StoreOptions['client']> }
  readonly #mirror: Mirror
  readonly #hot: HotSessions | null = null
  readonly #bus: InvalidationBus<HotMessage> | null = null
  #probe: NodeJS.Timeout | null = null
  #recovering = false
  #closed = false

  constructor (options: StoreOptions & { client: NonNullable<StoreOptions['client']> }, mirror: Mirror) {
    this.#o = options
    this.#mirror = mirror
    this.backend = new RedisBackend(options.client, {
      keyPrefix: options.keyPrefix,
      maxAge: options.maxAge,
      commandTimeoutMs: options.guard?.commandTimeoutMs ?? 250,
      probeIntervalMs: options.probeIntervalMs,
      maxProbeIntervalMs: options.maxProbeIntervalMs ?? options.probeIntervalMs,
      log: options.log,
      metrics: options.metrics,
      onDown: () => this.#ensureProbe()
    })
    // Not on a Redis Cluster: a PUBLISH reaches subscribers on other nodes over the cluster bus,
    // asynchronously, so the PING that orders a hot read after every earlier invalidation
    // vouches only for messages its own node already had (seen as stale reads in a failover).
    if (options.hot && !this.backend.outages.cluster) {
      const hot = this.#hot = new HotSessions(options.hot.max, options.hot.maxAgeMs, options.metrics)
      const bus = this.#bus = new InvalidationBus<HotMessage>(this.backend.client, {
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
      this.backend.publisher = { channel: bus.channel, message: (ids) => bus.message({ k: ids }) }
    }
  }

  /** hot sessions held, and whether the bus vouches for them (tests and diagnostics) */
  get hot (): { size: number, connected: boolean } | null {
    return this.#hot && { size: this.#hot.size, connected: this.#bus!.connected }
  }

  /**
   * A session read from Redis: a hot session once the bus has vouched for
   * it, else the master. `degraded(timeoutMs)` takes over when the node
   * turns out to be down (with what is left of one command timeout);
   * `inMemory` says whether memory serves the session by then.
   */
  read (id: string, answer: Answer, degraded: (timeoutMs?: number) => void, inMemory: () => boolean): void {
    const backend = this.backend
    const start = Date.now()
    // after a bus sync that failed, the read gets what is left of one command timeout: one request, one timeout
    const fromRedis = (timeoutMs?: number): void => {
      const seq = this.#hot?.seq
      backend.read(id, timeoutMs).then((hash) => {
        answer('redis', this.adopt(id, hash, seq), false)
      }, () => {
        // the read that found the node down: the replica within what is left of the timeout
        degraded(backend.remaining(start))
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
      if (vouched && hot!.get(id) === entry && entry.expiresAt > Date.now() && !inMemory()) {
        this.#o.metrics.hotHits.inc()
        this.#mirror.lru.get(id)
        answer('hot', this.#mirror.toSession(entry.fields, entry.expiresAt), false)
        return
      }
      this.#o.metrics.hotMisses.inc()
      if (inMemory()) degraded()
      else fromRedis(backend.remaining(start))
    })
  }

  /** a session read from Redis (or a replica): kept for the fallback, and as a hot session when read from the master with nothing invalidated since `seq` */
  adopt (id: string, hash: Record<string, string>, seq?: number): Record<string, unknown> | null {
    const stored = fromHash(hash)
    if (!stored) return null
    this.#mirror.clean(id, stored.fields, stored.expiresAt)
    if (seq !== undefined && this.#bus!.connected) this.#hot!.put(id, stored satisfies HotEntry, seq)
    return this.#mirror.toSession(stored.fields, stored.expiresAt)
  }

  /** drops sessions this instance changes from its hot sessions, before and after the change (a read between the two may have put the old version back) */
  invalidate (ids: string[]): void {
    this.#hot?.invalidate(ids)
  }

  touchHot (id: string, expiresAt: number): void {
    this.#hot?.touch(id, expiresAt)
  }

  /** The live sessions of a user: one ZRANGE and one HGETALL per session of theirs; index entries of sessions gone are pruned. */
  async listUser (userId: string): Promise<UserSession[]> {
    const redis = this.backend
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
  }

  /** Deletes each of a user's sessions in Redis but `except`, then their index entries; the ids deleted. */
  async destroyUser (userId: string, except: string | undefined): Promise<string[]> {
    const redis = this.backend
    const key = redis.userKey(userId)
    const ids = (await redis.run(key, (c) => c.zrange(key, '0', '-1'))).filter((id) => id !== except)
    // one command per session: their keys live in different Cluster slots
    this.invalidate(ids)
    await Promise.all(ids.map((id) => redis.unlink(id)))
    if (ids.length > 0) await redis.run(key, (c) => c.zrem(key, ...ids))
    this.invalidate(ids)
    for (const id of ids) this.#mirror.lru.delete(id)
    return ids
  }

  async start (waitMs: number): Promise<void> {
    await Promise.all([this.backend.start(waitMs), this.#bus?.start(waitMs)])
  }

  async close (): Promise<void> {
    this.#closed = true
    this.backend.close()
    if (this.#probe) clearInterval(this.#probe)
    this.#probe = null
    await this.#bus?.close()
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
    const redis = this.backend
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
    const redis = this.backend
    this.invalidate([id])
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
}
