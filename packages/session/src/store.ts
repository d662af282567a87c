import type { RedisClient, RedisGuard } from '@headroom/core'
import type { FastifyBaseLogger } from 'fastify'
import { LRUCache } from 'lru-cache'
import { apply, byteSize, decode, diff, encode, EXPIRES_FIELD, FIELD_PREFIX, fromHash, userOf, type Diff, type Fields } from './codec.js'
import { TooLarge, Unavailable } from './errors.js'
import type { SessionMetrics } from './metrics.js'
import { SAVE_SCRIPT, TOUCH_SCRIPT } from './scripts.js'

/** the fields a request read, set on the Session object by the plugin's onRequest hook */
export const kSnapshot = Symbol('headroom.session.snapshot')

/** sessions written back in parallel per round trip once Redis returns */
const WRITE_BACK_BATCH = 64

type Callback = (err?: Error | null, result?: unknown) => void
type SessionLike = object

interface Entry {
  fields: Fields
  expiresAt: number
  /** written while Redis was unavailable: to be written back */
  dirty: boolean
  /** destroyed while Redis was unavailable: to be deleted on write-back */
  deleted: boolean
  /** bumped by every write in memory, so a write-back knows whether it wrote the latest */
  version: number
}

export interface UserSession {
  /** the unsigned session id (what `request.session.sessionId` holds) */
  id: string
  expiresAt: Date
  data: Record<string, unknown>
}

interface ScriptedClient {
  headroomSessionSave (key: string, ...args: Array<string | number>): Promise<number>
  headroomSessionTouch (key: string, ttl: number, expiresAt: number): Promise<number>
}

export interface StoreOptions {
  client: RedisClient | null
  guard: RedisGuard | null
  keyPrefix: string
  maxAge: number
  maxSize: number
  fallbackMax: number
  probeIntervalMs: number
  log: FastifyBaseLogger
  metrics: SessionMetrics
}

/**
 * The @fastify/session store: Redis hashes written field by field, with an
 * in-memory fallback. Redis errors never reach the request: the store goes
 * offline (memory only, no Redis command on the request path), probes Redis
 * in the background, writes back what was written meanwhile, and goes online
 * again.
 */
/** Whether `nodeKey` (host:port) is the master of some slot in a Cluster client's slot map. */
function servesSlots (client: RedisClient | null, nodeKey: string): boolean {
  const slots = (client as { slots?: Array<string[] | undefined> } | null)?.slots
  if (!Array.isArray(slots)) return true
  return slots.some((nodes) => nodes?.[0] === nodeKey)
}

export class HeadroomStore {
  readonly #client: RedisClient | null
  readonly #guard: RedisGuard | null
  readonly #o: StoreOptions
  readonly #mirror: LRUCache<string, Entry>
  readonly #dirty = new Set<string>()
  #online: boolean
  #wentOffline = this.#newOfflineSignal()
  #probe: NodeJS.Timeout | null = null
  #recovering = false
  #closed = false

  constructor (options: StoreOptions) {
    this.#o = options
    this.#client = options.client
    this.#guard = options.guard
    this.#online = options.client !== null
    // recently read and recently written sessions, so an outage costs their users nothing
    this.#mirror = new LRUCache<string, Entry>({
      max: options.fallbackMax,
      dispose: (entry, id, reason) => {
        if (reason === 'evict' && entry.dirty) options.metrics.lost.inc()
        if (reason !== 'set') this.#dirty.delete(id)
      }
    })
    if (this.#client) {
      const c = this.#client as unknown as ScriptedClient & { defineCommand: RedisClient['defineCommand'] }
      // defined once per client: several plugin instances may share it
      if (typeof c.headroomSessionSave !== 'function') c.defineCommand('headroomSessionSave', { numberOfKeys: 1, lua: SAVE_SCRIPT })
      if (typeof c.headroomSessionTouch !== 'function') c.defineCommand('headroomSessionTouch', { numberOfKeys: 1, lua: TOUCH_SCRIPT })
    }
    options.metrics.fallbackActive.set(this.#client ? 0 : 1)
    // A dropped connection takes the store offline at once, rather than after a command timeout per request
    // (a Cluster keeps retrying commands for a lost node until they time out).
    this.#lostEvent = (this.#client as { isCluster?: boolean } | null)?.isCluster ? '-node' : 'close'
    this.#client?.on(this.#lostEvent, this.#onConnectionLost)
  }

  readonly #lostEvent: string
  readonly #onConnectionLost = (node?: { options?: { host?: string, port?: number } }): void => {
    // A Cluster also drops connections to nodes that serve no slot, on a
    // healthy cluster: the replicas given as startup nodes once the slot map
    // is known, replicas on slot refreshes. Only a master's counts as lost.
    if (node?.options !== undefined && !servesSlots(this.#client, `${node.options.host}:${node.options.port}`)) return
    if (this.#online) this.#failed(Object.assign(new Error('connection lost'), { code: 'CONNECTION_LOST' }))
  }

  /** true while sessions are served from memory: Redis is unavailable, or the write-back is not done (always, without Redis) */
  get fallbackActive (): boolean {
    return !this.#online || this.#dirty.size > 0
  }

  /** Memory serves a session while Redis is down, and until its write-back is done once Redis is back. */
  #inMemory (id: string): boolean {
    return !this.#online || (this.#dirty.size > 0 && this.#dirty.has(id))
  }

  /** sessions written during the outage, not yet in Redis */
  get pending (): number {
    return this.#dirty.size
  }

  sessionKey (id: string): string {
    return `${this.#o.keyPrefix}sess:{${id}}`
  }

  userKey (userId: string): string {
    return `${this.#o.keyPrefix}user:{${userId}}`
  }

  // ---- the @fastify/session store contract ----

  get (id: string, callback: Callback): void {
    if (this.#inMemory(id)) {
      callback(null, this.#fromMemory(id))
      return
    }
    this.#run(() => this.#read(this.sessionKey(id))).then((hash) => {
      const stored = fromHash(hash)
      if (!stored) {
        callback(null, null)
        return
      }
      // reuse the entry (get() also marks it recently used): no allocation on the hot path
      const known = this.#mirror.get(id)
      if (known && !known.dirty && !known.deleted) {
        known.fields = stored.fields
        known.expiresAt = stored.expiresAt
      } else {
        this.#mirror.set(id, { ...stored, dirty: false, deleted: false, version: 0 })
      }
      callback(null, this.#toSession(stored.fields, stored.expiresAt))
    }, (err: Error) => {
      this.#failed(err)
      callback(null, this.#fromMemory(id))
    })
  }

  set (id: string, session: SessionLike, callback: Callback): void {
    const fields = encode(session)
    const size = byteSize(fields)
    if (size > this.#o.maxSize) {
      callback(new TooLarge(size, this.#o.maxSize))
      return
    }
    const state = session as Record<symbol, unknown>
    const before = state[kSnapshot] as Fields | undefined
    if (!before) this.#o.metrics.created.inc()
    const changes = diff(before, fields)
    const expiresAt = Date.now() + this.#o.maxAge
    const done = () => {
      // a later save in the same request (after regenerate) then writes only what changes after this one
      state[kSnapshot] = fields
      callback()
    }
    if (this.#inMemory(id)) {
      this.#writeMemory(id, before, changes, expiresAt)
      done()
      return
    }
    this.#save(id, before === undefined ? 'n' : 'u', changes, expiresAt, userOf(fields), userOf(before)).then(() => {
      const known = this.#mirror.peek(id)
      this.#mirror.set(id, { fields: known && before ? apply(known.fields, changes) : fields, expiresAt, dirty: false, deleted: false, version: 0 })
      done()
    }, (err: Error) => {
      this.#failed(err)
      this.#writeMemory(id, before, changes, expiresAt)
      done()
    })
  }

  destroy (id: string, callback: Callback): void {
    if (this.#inMemory(id)) {
      const known = this.#mirror.peek(id)
      if (known && !known.deleted) this.#o.metrics.destroyed.inc()
      this.#tombstone(id)
      callback()
      return
    }
    this.#destroyInRedis(id).then((existed) => {
      // regenerate() of a never-saved session destroys an id Redis never had: not a destroyed session
      if (existed) this.#o.metrics.destroyed.inc()
      this.#mirror.delete(id)
      callback()
    }, (err: Error) => {
      this.#failed(err)
      this.#tombstone(id)
      callback()
    })
  }

  // ---- beyond the contract ----

  /** Extends the TTL of an unchanged session: PEXPIRE and its `@exp`, never a rewrite; errors only switch to the fallback. */
  async touch (id: string, userId: string | undefined): Promise<void> {
    const expiresAt = Date.now() + this.#o.maxAge
    const known = this.#mirror.peek(id)
    if (known) known.expiresAt = expiresAt
    if (this.#inMemory(id)) {
      if (known && this.#client) this.#markDirty(id, known)
      return
    }
    try {
      await this.#run(async (c) => {
        await (c as unknown as ScriptedClient).headroomSessionTouch(this.sessionKey(id), this.#o.maxAge, expiresAt)
        // every session of a user expires by now + maxAge at the latest, so the index may too
        if (userId !== undefined) await c.pexpire(this.userKey(userId), this.#o.maxAge)
      })
    } catch (err) {
      this.#failed(err as Error)
      if (known) this.#markDirty(id, known)
    }
  }

  /** The live sessions of a user: one ZRANGE and one HGETALL per session of theirs. */
  async listUser (userId: string): Promise<UserSession[]> {
    if (!this.#client) return this.#memoryUser(userId).map(([id, e]) => ({ id, expiresAt: new Date(e.expiresAt), data: decode(e.fields) ?? {} }))
    try {
      const key = this.userKey(userId)
      const ids = await this.#run((c) => c.zrange(key, '0', '-1'))
      const hashes = await Promise.all(ids.map((id) => this.#run((c) => c.hgetall(this.sessionKey(id)))))
      const out: UserSession[] = []
      const gone: string[] = []
      ids.forEach((id, i) => {
        const stored = fromHash(hashes[i] ?? {})
        const data = stored && userOf(stored.fields) === userId ? decode(stored.fields) : null
        if (stored && data) out.push({ id, expiresAt: new Date(stored.expiresAt), data })
        else gone.push(id)
      })
      // index entries of sessions that expired or moved to another user are pruned as they are found
      if (gone.length > 0) await this.#run((c) => c.zrem(key, ...gone))
      return out
    } catch (err) {
      throw this.#unavailable(err as Error)
    }
  }

  /** Logs a user out everywhere: deletes each of their sessions (O(their sessions)), then the index. Returns how many. */
  async destroyUser (userId: string, except?: string): Promise<number> {
    const local = this.#memoryUser(userId).filter(([id]) => id !== except)
    for (const [id] of local) this.#client ? this.#tombstone(id) : this.#mirror.delete(id)
    if (!this.#client) {
      this.#o.metrics.destroyed.inc(local.length)
      return local.length
    }
    try {
      const key = this.userKey(userId)
      const ids = (await this.#run((c) => c.zrange(key, '0', '-1'))).filter((id) => id !== except)
      // one command per session: their keys live in different Cluster slots
      await Promise.all(ids.map((id) => this.#run((c) => c.unlink(this.sessionKey(id)))))
      if (ids.length > 0) await this.#run((c) => c.zrem(key, ...ids))
      for (const id of ids) {
        this.#mirror.delete(id)
      }
      // tombstones of sessions Redis confirmed gone need no write-back
      for (const [id] of local) if (ids.includes(id)) this.#mirror.delete(id)
      const count = new Set([...ids, ...local.map(([id]) => id)]).size
      this.#o.metrics.destroyed.inc(count)
      return count
    } catch (err) {
      throw this.#unavailable(err as Error)
    }
  }

  /**
   * Waits (bounded) for the client to be ready, so the first requests do not
   * start on the fallback; a Redis still down after `waitMs` starts the store
   * in fallback mode, and the probe takes over.
   */
  async start (waitMs: number): Promise<void> {
    const client = this.#client
    if (!client || client.status === 'ready') return
    // a lazyConnect client would otherwise never connect: the guard sends nothing to a client that is not ready
    if (client.status === 'wait') client.connect().catch(() => {})
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        client.off('ready', done)
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      timer.unref()
      client.once('ready', done)
    })
    if ((client.status as string) !== 'ready') this.#failed(Object.assign(new Error('not ready'), { code: `client ${client.status}` }))
  }

  close (): void {
    this.#closed = true
    this.#client?.off(this.#lostEvent, this.#onConnectionLost)
    if (this.#probe) clearInterval(this.#probe)
    this.#probe = null
  }

  // ---- Redis ----

  /**
   * Every Redis call: bounded by the guard's timeout, and abandoned as soon as
   * any other call has taken the store offline, so in an outage no request
   * waits longer than the first one that noticed it.
   */
  #run<T> (fn: (client: RedisClient) => Promise<T>): Promise<T> {
    return Promise.race([(this.#guard as RedisGuard).run(fn), this.#wentOffline.promise])
  }

  /**
   * HGETALL, batched: the reads of one event-loop turn go out as one pipeline
   * (one write to the socket instead of one per request). Not on a Cluster,
   * whose pipelines must stay within one slot.
   */
  #read (key: string): Promise<Record<string, string>> {
    const client = this.#client as RedisClient
    if ((client as { isCluster?: boolean }).isCluster) return client.hgetall(key)
    return new Promise((resolve, reject) => {
      if (this.#reads === null) {
        this.#reads = []
        setImmediate(this.#flushReads)
      }
      this.#reads.push({ key, resolve, reject })
    })
  }

  #reads: Array<{ key: string, resolve: (hash: Record<string, string>) => void, reject: (err: Error) => void }> | null = null

  readonly #flushReads = (): void => {
    const reads = this.#reads ?? []
    this.#reads = null
    const client = this.#client as RedisClient
    if (reads.length === 1) {
      const only = reads[0] as (typeof reads)[number]
      client.hgetall(only.key).then(only.resolve, only.reject)
      return
    }
    const pipeline = client.pipeline()
    for (const r of reads) pipeline.hgetall(r.key)
    pipeline.exec().then((results) => {
      reads.forEach((r, i) => {
        const [err, hash] = results?.[i] ?? [new Error('no reply'), null]
        if (err) r.reject(err)
        else r.resolve(hash as Record<string, string>)
      })
    }, (err: Error) => { for (const r of reads) r.reject(err) })
  }

  #newOfflineSignal (): { promise: Promise<never>, reject: (err: Error) => void } {
    let reject: (err: Error) => void = () => {}
    const promise = new Promise<never>((_resolve, _reject) => { reject = _reject })
    promise.catch(() => {})
    return { promise, reject }
  }

  async #save (id: string, mode: 'n' | 'u' | 'r', { changed, removed }: Diff, expiresAt: number, userId: string | undefined, previousUser: string | undefined): Promise<void> {
    const ttl = expiresAt - Date.now()
    if (ttl <= 0) return
    const key = this.sessionKey(id)
    const args: Array<string | number> = [mode, ttl, expiresAt, removed.length]
    for (const name of removed) args.push(FIELD_PREFIX + name)
    for (const name in changed) args.push(FIELD_PREFIX + name, changed[name] as string)
    await this.#run(async (c) => {
      // the index first: a dangling index entry is pruned later, a missing one would escape log-out-everywhere
      if (userId !== undefined) {
        const userKey = this.userKey(userId)
        await c.multi().zadd(userKey, 'NX', String(Date.now()), id).pexpire(userKey, this.#o.maxAge).exec()
      }
      await (c as unknown as ScriptedClient).headroomSessionSave(key, ...args)
      if (previousUser !== undefined && previousUser !== userId) await c.zrem(this.userKey(previousUser), id)
    })
  }

  /** resolves whether the session existed */
  async #destroyInRedis (id: string): Promise<boolean> {
    const key = this.sessionKey(id)
    return this.#run(async (c) => {
      const replies = await c.multi().hget(key, FIELD_PREFIX + 'userId').unlink(key).exec()
      const raw = replies?.[0]?.[1]
      const userId = typeof raw === 'string' ? userOf({ userId: raw }) : undefined
      if (userId !== undefined) await c.zrem(this.userKey(userId), id)
      return replies?.[1]?.[1] === 1
    })
  }

  #failed (err: Error): void {
    this.#o.metrics.redisErrors.inc()
    if (!this.#online || this.#closed) return
    this.#online = false
    this.#wentOffline.reject(err)
    this.#o.metrics.fallbackActive.set(1)
    // the error's code only: messages of some Redis errors quote command arguments
    this.#o.log.warn({ code: (err as { code?: string }).code ?? err.name }, '@headroom/session: Redis unavailable, sessions fall back to memory on this instance')
    this.#probe = setInterval(() => { this.#recover() }, this.#o.probeIntervalMs)
    this.#probe.unref()
  }

  /**
   * Once Redis answers again: new sessions and sessions untouched by the
   * outage go to Redis at once; those written during the outage stay in memory
   * until they are written back (in batches, so the write-back keeps up with
   * traffic that keeps writing them).
   */
  #recover (): void {
    if (this.#recovering || this.#online || this.#closed) return
    this.#recovering = true
    const run = async () => {
      await (this.#guard as RedisGuard).run((c) => c.ping())
      this.#wentOffline = this.#newOfflineSignal()
      this.#online = true
      if (this.#probe) clearInterval(this.#probe)
      this.#probe = null
      let written = 0
      while (this.#dirty.size > 0 && this.#online) {
        const batch = [...this.#dirty].slice(0, WRITE_BACK_BATCH)
        const results = await Promise.allSettled(batch.map((id) => this.#writeBack(id)))
        const failure = results.find((r) => r.status === 'rejected')
        if (failure) {
          this.#failed(failure.reason as Error)
          return
        }
        written += batch.length
      }
      if (!this.#online) return
      this.#o.metrics.fallbackActive.set(0)
      this.#o.metrics.fallbackSessions.set(0)
      this.#o.log.info({ writtenBack: written }, '@headroom/session: Redis is back, sessions written during the outage were written back')
    }
    run().catch(() => { this.#o.metrics.redisErrors.inc() }).finally(() => { this.#recovering = false })
  }

  async #writeBack (id: string): Promise<void> {
    const entry = this.#mirror.peek(id)
    if (!entry || !entry.dirty) {
      this.#dirty.delete(id)
      return
    }
    const version = entry.version
    if (entry.deleted) {
      await this.#destroyInRedis(id)
    } else {
      // replace: what this instance held during the outage is the newest version of the session
      await this.#save(id, 'r', { changed: entry.fields, removed: [] }, entry.expiresAt, userOf(entry.fields), undefined)
    }
    this.#o.metrics.writtenBack.inc()
    // written again while this write-back was in flight (a write replaces the entry): the next batch takes the newer version
    const current = this.#mirror.peek(id)
    if (current !== entry || entry.version !== version) return
    entry.dirty = false
    this.#dirty.delete(id)
    if (entry.deleted) this.#mirror.delete(id)
    this.#o.metrics.fallbackSessions.set(this.#dirty.size)
  }

  // ---- memory ----

  #fromMemory (id: string): Record<string, unknown> | null {
    const entry = this.#mirror.get(id)
    if (!entry || entry.deleted || entry.expiresAt <= Date.now()) return null
    return this.#toSession(entry.fields, entry.expiresAt)
  }

  #writeMemory (id: string, before: Fields | undefined, changes: Diff, expiresAt: number): void {
    const known = this.#mirror.peek(id)
    // the same per-field merge as in Redis, so concurrent requests on this instance lose nothing either
    const fields = known && !known.deleted && before ? apply(known.fields, changes) : { ...changes.changed }
    const entry: Entry = { fields, expiresAt, dirty: false, deleted: false, version: (known?.version ?? 0) + 1 }
    this.#mirror.set(id, entry)
    if (this.#client) this.#markDirty(id, entry)
  }

  #tombstone (id: string): void {
    const entry: Entry = { fields: {}, expiresAt: Date.now() + this.#o.maxAge, dirty: false, deleted: true, version: (this.#mirror.peek(id)?.version ?? 0) + 1 }
    this.#mirror.set(id, entry)
    if (this.#client) this.#markDirty(id, entry)
  }

  #markDirty (id: string, entry: Entry): void {
    if (entry.dirty) entry.version++
    entry.dirty = true
    this.#dirty.add(id)
    this.#o.metrics.fallbackSessions.set(this.#dirty.size)
  }

  #memoryUser (userId: string): Array<[string, Entry]> {
    const out: Array<[string, Entry]> = []
    const now = Date.now()
    for (const [id, entry] of this.#mirror.entries()) {
      if (!entry.deleted && entry.expiresAt > now && userOf(entry.fields) === userId) out.push([id, entry])
    }
    return out
  }

  #toSession (fields: Fields, expiresAt: number): Record<string, unknown> | null {
    const data = decode(fields)
    if (!data) return null
    // @fastify/session keeps `expires` as cookie.originalExpires: the plugin reads it to decide when to touch
    data.cookie = { originalMaxAge: this.#o.maxAge, expires: new Date(expiresAt) }
    return data
  }

  #unavailable (err: Error): Error {
    this.#failed(err)
    return new Unavailable((err as { code?: string }).code ?? err.name)
  }
}

export { EXPIRES_FIELD }
