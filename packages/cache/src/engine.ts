import type { FastifyBaseLogger } from 'fastify'
import type { Bus } from './bus.js'
import { expiresAt, makeEntry, type Entry } from './entry.js'
import { FactoryTimeout } from './errors.js'
import type { L1 } from './l1.js'
import type { L2 } from './l2.js'
import type { CacheMetrics, NamespaceMetrics } from './metrics.js'
import type { ResolvedNamespace, ResolvedPolicy } from './options.js'
import { ReplayQueue } from './replay.js'
import { endRead, startRead, type Tier } from './tracing.js'
import { context, trace } from '@opentelemetry/api'

export interface FactoryContext {
  /** aborted when the hard timeout gives up on this call */
  signal: AbortSignal
}

export type Factory<T> = (ctx: FactoryContext) => T | Promise<T>

/** Where one key lives: namespace, policy and the fully scoped key. */
export interface Target {
  ns: ResolvedNamespace
  metrics: NamespaceMetrics
  /** the scoped key (`<ns>|s|<key>` or `<ns>|u|<user>|<key>`) */
  key: string
  policy: ResolvedPolicy
  tags: string[]
}

/** What a lease attempt ends with: the fence to store under, or the entry another instance stored meanwhile. */
export interface LeaseOutcome { entry?: Entry, fence: string, gens?: string[] }

/**
 * A read that may still store a value into L1 (a flight, a route's response
 * being produced, a lease wait). It stays registered until its last L1 write
 * (after its flight has answered, if a soft timeout answered early): an
 * invalidation of its key or tags marks it, and then it stores nothing, so
 * a value produced before an invalidation never lands in L1 after it.
 */
export interface Fill {
  key: string
  tags: string[]
  /** an invalidation of the key or one of its tags arrived while it ran: do not store */
  poisoned: boolean
}

interface Flight extends Fill {
  promise: Promise<Entry | undefined>
  /** the factory's store, still running after a soft timeout answered with the stale value */
  background?: Promise<void>
  /** where its entry came from, for the spans of the reads that share it */
  tier: Tier
  /** it waited for another instance's lease */
  leaseWaited: boolean
}

/** what a traced read learns on its way: the flight it ran or joined */
interface Read { flight: Flight | undefined, joined: boolean }

function newFlight (t: Target): Flight {
  return { promise: undefined as never, key: t.key, tags: t.tags, poisoned: false, tier: 'miss', leaseWaited: false }
}

const ignore = (): void => {}

/**
 * The two-tier read/write path shared by every namespace and the HTTP
 * layer. Reads: L1, then (coalesced per key) L2, then the factory. Writes of
 * factory results go to L2 in the background so a slow Redis never slows a
 * response; explicit `set`/`delete`/`invalidateTags` wait for Redis (bounded
 * by the guard) and fall back to L1 plus a replay queue.
 */
export class Engine {
  readonly #inflight = new Map<string, Flight>()
  /** every read that may still write L1, by key (see Fill): what an invalidation marks */
  readonly #fills = new Map<string, Set<Fill>>()
  /** invalidations that could not reach Redis, replayed when it is back */
  readonly #replay: ReplayQueue
  /**
   * When each key and tag still in the replay queue was invalidated: until the
   * replay reaches Redis, an L2 entry created before that is the value the
   * invalidation removes, so no read here uses it (this instance ignores its
   * own bus messages, so nothing else would drop it from L1 afterwards).
   */
  readonly #unreplayed = new Map<string, number>()
  #seq = 0

  constructor (
    readonly l1: L1,
    readonly l2: L2 | null,
    readonly bus: Bus | null,
    readonly metrics: CacheMetrics,
    readonly now: () => number,
    readonly log: FastifyBaseLogger,
    replayLimit: number
  ) {
    this.#replay = new ReplayQueue(replayLimit, {
      ready: () => this.l2 !== null && this.l2.guard.breaker.allowsCall && this.l2.guard.client.status === 'ready',
      deleteKeys: async (keys) => {
        await this.l2!.delete(keys, this.bus?.message({ k: keys }) ?? '')
        this.#replayed(keys, [])
      },
      invalidateTags: async (tags) => {
        await this.l2!.invalidateTags(tags, this.bus?.message({ t: tags }) ?? '')
        this.#replayed([], tags)
      }
    }, log)
  }

  /** Redis is configured but unusable: serving from L1 and the factory. */
  get degraded (): boolean {
    if (!this.l2) return false
    return !this.l2.guard.healthy || this.l2.guard.client.status !== 'ready' || (this.bus !== null && !this.bus.connected)
  }

  decode<T> (entry: Entry): T {
    return JSON.parse(entry.raw) as T
  }

  // ---- reads ----

  async wrap<T> (t: Target, factory: Factory<T>): Promise<T> {
    const span = startRead('cache.wrap', t)
    const now = this.now()
    const cached = t.ns.l1 ? this.l1.get(t.key, now) : undefined
    if (cached !== undefined) {
      if (now < cached.freshUntil) {
        t.metrics.l1Hit.inc()
        endRead(span, 'l1', false)
        return JSON.parse(cached.raw) as T
      }
      if (now < cached.swrUntil) {
        t.metrics.l1Hit.inc()
        t.metrics.staleSwr.inc()
        // the refresh's own work (the factory's queries) shows under this read
        if (span === undefined) this.#revalidate(t, factory)
        else context.with(trace.setSpan(context.active(), span), () => this.#revalidate(t, factory))
        endRead(span, 'stale', false)
        return JSON.parse(cached.raw) as T
      }
    }
    t.metrics.l1Miss.inc()
    const read: Read = { flight: undefined, joined: false }
    let entry: Entry | undefined
    try {
      entry = span === undefined
        ? await this.#load(t, factory, cached, false, read)
        : await context.with(trace.setSpan(context.active(), span), () => this.#load(t, factory, cached, false, read))
    } catch (err) {
      endRead(span, read.flight?.tier, read.joined || read.flight?.leaseWaited === true, err)
      throw err
    }
    endRead(span, read.flight?.tier, read.joined || read.flight?.leaseWaited === true)
    return entry === undefined ? undefined as T : JSON.parse(entry.raw) as T
  }

  /** A fresh entry from L1, synchronously (the HTTP hit path); counts the L1 hit or miss. */
  peek (t: Target): Entry | undefined {
    const now = this.now()
    const cached = t.ns.l1 ? this.l1.get(t.key, now) : undefined
    if (cached !== undefined && now < cached.freshUntil) {
      t.metrics.l1Hit.inc()
      return cached
    }
    t.metrics.l1Miss.inc()
    return undefined
  }

  /** A fresh entry from L1 or L2, without calling any factory. */
  lookup (t: Target): Promise<Entry | undefined> {
    const span = startRead('cache.get', t)
    const cached = this.peek(t)
    if (cached !== undefined) {
      endRead(span, 'l1', false)
      return Promise.resolve(cached)
    }
    // lookupL2 never rejects: Redis trouble is a miss
    return this.lookupL2(t).then((entry) => {
      endRead(span, entry === undefined ? 'miss' : 'l2', false)
      return entry
    })
  }

  /** The L2 half of `lookup`: a fresh entry from Redis, backfilled into L1. */
  async lookupL2 (t: Target): Promise<Entry | undefined> {
    if (!this.l2) return undefined
    const seq = this.#seq
    try {
      const { entry } = await this.l2.read(t.key, [])
      const at = this.now()
      if (entry !== undefined && at < entry.freshUntil && !this.#invalidatedSince(t, entry)) {
        t.metrics.l2Hit.inc()
        if (t.ns.l1 && seq === this.#seq) this.l1.set(t.key, entry, at)
        return entry
      }
    } catch {
      this.metrics.l2Error('get')
    }
    t.metrics.l2Miss.inc()
    return undefined
  }

  #revalidate<T> (t: Target, factory: Factory<T>): void {
    if (this.#inflight.has(t.key)) return
    this.#load(t, factory, undefined, true).catch((err: unknown) => {
      this.log.warn({ err: errMessage(err), namespace: t.ns.name }, '@headroom/cache: background refresh failed; the stale value stays')
    })
  }

  /** One flight per key in this process: concurrent misses share it. */
  #load<T> (t: Target, factory: Factory<T>, stale: Entry | undefined, refresh: boolean, read?: Read): Promise<Entry | undefined> {
    const running = this.#inflight.get(t.key)
    // a flight an invalidation poisoned may return what the invalidation removed: a read that starts after it flies anew
    if (running !== undefined && !running.poisoned) {
      t.metrics.coalescedProcess.inc()
      if (read !== undefined) {
        read.flight = running
        read.joined = true
      }
      return running.promise
    }
    const flight = newFlight(t)
    if (read !== undefined) read.flight = flight
    this.#inflight.set(t.key, flight)
    this.#track(flight)
    flight.promise = this.#fly(t, factory, stale, refresh, flight).finally(() => {
      if (this.#inflight.get(t.key) === flight) this.#inflight.delete(t.key)
      // answered by a soft timeout: the factory may still store, so an invalidation must still reach it
      if (flight.background === undefined) this.#untrack(flight)
      else flight.background.then(() => this.#untrack(flight), ignore)
    })
    return flight.promise
  }

  async #fly<T> (t: Target, factory: Factory<T>, stale: Entry | undefined, refresh: boolean, flight: Flight): Promise<Entry | undefined> {
    let gens: string[] | null = null
    if (this.l2) {
      try {
        const read = await this.l2.read(t.key, t.tags)
        gens = read.gens
        const found = this.#usable(t, read.entry, refresh, flight)
        if (found) return found
        if (read.entry && (!stale || read.entry.createdAt > stale.createdAt)) stale = read.entry
      } catch {
        this.metrics.l2Error('get')
      }
      t.metrics.l2Miss.inc()
    }
    let fence = ''
    if (t.ns.lease && this.l2 && this.bus && gens) {
      const outcome = await this.#lease(t, flight)
      if (outcome.entry) return outcome.entry
      fence = outcome.fence
      if (outcome.gens) gens = outcome.gens
    }
    return this.#compute(t, factory, stale, gens, fence, flight)
  }

  /** An L2 entry this read can use: fresh, or in its revalidate window (then refreshed in the background). */
  #usable (t: Target, entry: Entry | undefined, refresh: boolean, flight: Flight): Entry | undefined {
    if (!entry || this.#invalidatedSince(t, entry)) return undefined
    const now = this.now()
    const fresh = now < entry.freshUntil
    if (!fresh && (refresh || now >= entry.swrUntil)) return undefined
    t.metrics.l2Hit.inc()
    if (t.ns.l1 && !flight.poisoned) this.l1.set(t.key, entry, now)
    if (!fresh) t.metrics.staleSwr.inc()
    flight.tier = fresh ? 'l2' : 'stale'
    return entry
  }

  /**
   * Cross-instance coalescing: take the key's lease, or wait (woken by the
   * holder's pub/sub message, bounded by the lease's remaining time) and
   * read what it stored. Redis trouble: carry on with per-process coalescing.
   */
  async #lease (t: Target, flight: Flight, freshOnly = false): Promise<LeaseOutcome> {
    const l2 = this.l2!
    const bus = this.bus!
    const deadline = this.now() + t.policy.hardTimeout
    let waited = false
    try {
      while (this.now() < deadline) {
        const lease = await l2.acquire(t.key, t.policy.hardTimeout + 1000)
        if (lease.acquired) return { fence: lease.token }
        if (!waited) t.metrics.coalescedCluster.inc()
        waited = true
        flight.leaseWaited = true
        const wake = bus.waitForLease(t.key, Math.min(lease.pttl + 20, deadline - this.now()))
        // the holder may have finished between our ACQUIRE and the waiter: read once before sleeping
        let read = await l2.read(t.key, t.tags)
        let found = this.#usable(t, read.entry, freshOnly, flight)
        if (found) return { entry: found, fence: '' }
        await wake
        read = await l2.read(t.key, t.tags)
        found = this.#usable(t, read.entry, freshOnly, flight)
        if (found) return { entry: found, fence: '' }
        if (!bus.connected) return { fence: '', gens: read.gens }
      }
    } catch {
      this.metrics.l2Error('lease')
    }
    return { fence: '' }
  }

  async #compute<T> (t: Target, factory: Factory<T>, stale: Entry | undefined, gens: string[] | null, fence: string, flight: Flight): Promise<Entry | undefined> {
    const { policy, metrics } = t
    const controller = new AbortController()
    const started = performance.now()
    let hardTimer: NodeJS.Timeout | undefined
    const produced = new Promise<T>((resolve, reject) => {
      hardTimer = setTimeout(() => {
        // a 503 the client may retry: Fastify's error handler sends `headers`
        const err = Object.assign(new FactoryTimeout(policy.hardTimeout), { headers: { 'retry-after': '1' } })
        controller.abort(err)
        reject(err)
      }, policy.hardTimeout)
      hardTimer.unref()
      Promise.resolve().then(() => factory({ signal: controller.signal })).then(resolve, reject)
    }).finally(() => clearTimeout(hardTimer))

    const stored = produced.then((value) => {
      metrics.factoryOk.inc()
      metrics.factoryDuration.observe((performance.now() - started) / 1000)
      const raw = JSON.stringify(value)
      if (raw === undefined) return undefined
      const now = this.now()
      const entry = makeEntry(raw, policy, t.tags, now)
      if (!flight.poisoned) {
        if (t.ns.l1) this.l1.set(t.key, entry, now)
        if (this.l2 && gens) this.#storeL2(t, entry, gens, fence, now)
      } else if (fence) {
        this.#releaseLease(t.key, fence)
      }
      return entry
    }, (err: unknown) => {
      if (err instanceof FactoryTimeout) metrics.factoryTimeout.inc()
      else metrics.factoryError.inc()
      metrics.factoryDuration.observe((performance.now() - started) / 1000)
      if (fence) this.#releaseLease(t.key, fence)
      throw err
    })

    const usableStale = stale !== undefined && this.now() < expiresAt(stale) ? stale : undefined
    let result: Promise<Entry | undefined> = stored
    if (usableStale && policy.timeout > 0) {
      // soft timeout: answer with the stale value, let the factory finish and store in the background
      let softTimer: NodeJS.Timeout | undefined
      const soft = new Promise<Entry>((resolve) => {
        softTimer = setTimeout(() => { metrics.staleTimeout.inc(); resolve(usableStale) }, policy.timeout)
        softTimer.unref()
      })
      stored.finally(() => clearTimeout(softTimer)).catch(() => {})
      flight.background = stored.then(ignore, ignore)
      result = Promise.race([stored, soft])
    }
    try {
      const entry = await result
      if (entry !== undefined && entry === usableStale) flight.tier = 'stale'
      return entry
    } catch (err) {
      // stale-if-error: within the grace period the stale value answers; the error is never cached
      if (stale !== undefined && this.now() < stale.graceUntil) {
        metrics.staleError.inc()
        flight.tier = 'stale'
        this.log.warn({ err: errMessage(err), namespace: t.ns.name }, '@headroom/cache: factory failed, serving the stale value')
        return stale
      }
      throw err
    }
  }

  #storeL2 (t: Target, entry: Entry, gens: string[], fence: string, now: number): void {
    const message = fence ? this.bus!.message({ l: t.key }) : ''
    this.l2!.store(t.key, entry, gens, fence, message, now).catch(() => {
      this.metrics.l2Error('set')
    })
  }

  #releaseLease (key: string, fence: string): void {
    this.l2!.release(key, fence, this.bus!.message({ l: key })).catch(() => this.metrics.l2Error('lease'))
  }

  // ---- writes ----

  async set (t: Target, value: unknown): Promise<void> {
    const raw = JSON.stringify(value)
    if (raw === undefined) return this.delete([t.key])
    const now = this.now()
    const entry = makeEntry(raw, t.policy, t.tags, now)
    this.#invalidateLocal([t.key], [])
    if (t.ns.l1) this.l1.set(t.key, entry, now)
    if (!this.l2) return
    try {
      await this.l2.set(t.key, entry, this.bus?.message({ k: [t.key] }) ?? '', now)
      // the same for a set: L1 keeps the value it wrote, and nothing a read filled meanwhile
      const held = this.l1.get(t.key, this.now())
      if (held !== undefined && (held.raw !== entry.raw || held.createdAt !== entry.createdAt)) this.#invalidateLocal([t.key], [])
      else this.#poison([t.key])
      this.#checkReplicated([t.key], [], await this.l2.replicated())
    } catch (err) {
      this.metrics.l2Error('set')
      this.#queueReplay([t.key], [])
      this.log.warn({ err: errMessage(err) }, '@headroom/cache: set did not reach Redis; other instances keep their L1 copy until it expires')
    }
  }

  /** Stores a response (or any value) written outside a factory, with the write path's conditional L2 store (under `fence`, from `lease`). */
  put (t: Target, entry: Entry, gens: string[] | null, fence = '', fill?: Fill): void {
    if (fill !== undefined) this.#untrack(fill)
    const now = this.now()
    // invalidated while the response was produced: it may be what the invalidation removed
    if (fill?.poisoned === true) {
      if (fence) this.#releaseLease(t.key, fence)
      return
    }
    if (t.ns.l1) this.l1.set(t.key, entry, now)
    if (this.l2 && gens) this.#storeL2(t, entry, gens, fence, now)
    else if (fence) this.#releaseLease(t.key, fence)
  }

  /** Registers a value about to be produced outside a factory (a route's response), for `put` or `release`: an invalidation meanwhile marks it. */
  fill (t: Target): Fill {
    const fill: Fill = { key: t.key, tags: t.tags, poisoned: false }
    this.#track(fill)
    return fill
  }

  /**
   * Cross-instance coalescing for a value produced outside a factory (a
   * route's response): on a `lease` namespace, take the key's lease or wait
   * for the holder and return the fresh entry it stored. Without a lease
   * namespace, or with Redis down, `{ fence: '' }`: produce it here.
   */
  async lease (t: Target): Promise<LeaseOutcome> {
    if (!t.ns.lease || !this.l2 || !this.bus) return { fence: '' }
    const flight = newFlight(t)
    this.#track(flight)
    try {
      return await this.#lease(t, flight, true)
    } finally {
      this.#untrack(flight)
    }
  }

  /** Gives up a lease taken by `lease` without storing (the response was not cacheable): the waiters take it in turn. */
  release (t: Target, fence: string, fill?: Fill): void {
    if (fill !== undefined) this.#untrack(fill)
    if (fence && this.l2 && this.bus) this.#releaseLease(t.key, fence)
  }

  /** The generation counters a later `put` checks against, read before the response is produced. */
  async generations (t: Target): Promise<string[] | null> {
    if (!this.l2) return null
    try {
      return (await this.l2.read(t.key, t.tags)).gens
    } catch {
      this.metrics.l2Error('get')
      return null
    }
  }

  async delete (keys: string[]): Promise<void> {
    this.#invalidateLocal(keys, [])
    if (!this.l2) return
    try {
      await this.l2.delete(keys, this.bus?.message({ k: keys }) ?? '')
      // a read that reached Redis before the delete did (a NOSCRIPT reload, a redirect) may have filled L1 meanwhile
      this.#invalidateLocal(keys, [])
      this.#checkReplicated(keys, [], await this.l2.replicated())
    } catch (err) {
      this.metrics.l2Error('delete')
      this.#queueReplay(keys, [])
      this.log.warn({ err: errMessage(err) }, '@headroom/cache: delete did not reach Redis; queued for replay')
    }
  }

  async invalidateTags (tags: string[]): Promise<void> {
    if (tags.length === 0) return
    this.#invalidateLocal([], tags)
    if (!this.l2) return
    try {
      await this.l2.invalidateTags(tags, this.bus?.message({ t: tags }) ?? '')
      this.#invalidateLocal([], tags)
      this.#checkReplicated([], tags, await this.l2.replicated())
    } catch (err) {
      this.metrics.l2Error('invalidate')
      this.#queueReplay([], tags)
      this.log.warn({ err: errMessage(err) }, '@headroom/cache: tag invalidation did not reach Redis; queued for replay')
    }
  }

  /** From another instance, over the bus. */
  onRemoteInvalidate (keys: string[], tags: string[]): void {
    this.metrics.invalidationsReceived.inc()
    this.#invalidateLocal(keys, tags)
  }

  onResync (): void {
    this.log.info('@headroom/cache: invalidation bus back; L1 cleared since messages may have been lost')
    this.#seq++
    this.l1.clear()
    for (const fills of this.#fills.values()) for (const fill of fills) fill.poisoned = true
  }

  #invalidateLocal (keys: string[], tags: string[]): void {
    for (const key of keys) this.l1.delete(key)
    this.#poison(keys)
    if (tags.length > 0) {
      this.l1.deleteTags(tags)
      for (const fills of this.#fills.values()) {
        for (const fill of fills) if (fill.tags.some((tag) => tags.includes(tag))) fill.poisoned = true
      }
    }
  }

  /** In-flight reads of `keys` neither fill L1 nor serve reads that start from now on. */
  #poison (keys: string[]): void {
    this.#seq++
    for (const key of keys) {
      const fills = this.#fills.get(key)
      if (fills) for (const fill of fills) fill.poisoned = true
    }
  }

  #track (fill: Fill): void {
    const fills = this.#fills.get(fill.key)
    if (fills) fills.add(fill)
    else this.#fills.set(fill.key, new Set([fill]))
  }

  #untrack (fill: Fill): void {
    const fills = this.#fills.get(fill.key)
    if (fills?.delete(fill) === true && fills.size === 0) this.#fills.delete(fill.key)
  }

  /** Queues an invalidation for replay, remembering when it happened (see #unreplayed). */
  #queueReplay (keys: string[], tags: string[]): void {
    const at = this.now()
    for (const key of keys) this.#unreplayed.set(`k:${key}`, at)
    for (const tag of tags) this.#unreplayed.set(`t:${tag}`, at)
    this.#replay.add(keys, tags)
    // the queue drops its oldest when full: forget what it no longer holds
    if (this.#unreplayed.size > 2 * this.#replay.limit) this.#pruneUnreplayed()
  }

  #pruneUnreplayed (): void {
    for (const name of this.#unreplayed.keys()) {
      const isKey = name.startsWith('k:')
      if (!this.#replay.pending(isKey ? name.slice(2) : '', isKey ? [] : [name.slice(2)])) this.#unreplayed.delete(name)
    }
  }

  /** The replay reached Redis: forget the times, and drop from L1 what was read meanwhile. */
  #replayed (keys: string[], tags: string[]): void {
    for (const key of keys) this.#unreplayed.delete(`k:${key}`)
    for (const tag of tags) this.#unreplayed.delete(`t:${tag}`)
    this.#invalidateLocal(keys, tags)
  }

  /** An L2 entry that an invalidation still waiting for replay removes (created before it). */
  #invalidatedSince (t: Target, entry: Entry): boolean {
    if (this.#unreplayed.size === 0 || !this.#replay.pending(t.key, t.tags)) return false
    const times = [this.#unreplayed.get(`k:${t.key}`), ...t.tags.map((tag) => this.#unreplayed.get(`t:${tag}`))]
    return times.some((at) => at !== undefined && entry.createdAt <= at)
  }

  /** Not on enough replicas: a failover could lose it, so it is applied again later (deletes are idempotent). */
  #checkReplicated (keys: string[], tags: string[], replicated: boolean): void {
    if (replicated) return
    this.metrics.l2Error('replicate')
    this.#queueReplay(keys, tags)
    this.log.warn('@headroom/cache: an invalidation reached fewer replicas than waitForReplicas; queued for replay')
  }

  get pendingReplay (): number {
    return this.#replay.size
  }

  stop (): void {
    this.#replay.stop()
  }
}

export function errMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
