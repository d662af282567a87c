import type { FastifyBaseLogger } from 'fastify'
import type { Bus } from './bus.js'
import { makeEntry, type Entry } from './entry.js'
import { compute, type Factory } from './factory.js'
import type { Fill } from './fills.js'
import { Flights, type Flight, type LeaseOutcome, type Read, type Target } from './singleflight.js'
import type { L1 } from './l1.js'
import type { L2 } from './l2.js'
import type { CacheMetrics } from './metrics.js'
import { errMessage, Invalidations } from './invalidation.js'
import { endRead, startRead } from './tracing.js'
import { context, trace } from '@opentelemetry/api'

export type { Factory, FactoryContext } from './factory.js'
export type { Fill } from './fills.js'
export type { LeaseOutcome, Target } from './singleflight.js'

/**
 * The two-tier read/write path shared by every namespace and the HTTP
 * layer. Reads: L1, then (coalesced per key) L2, then the factory. Writes of
 * factory results go to L2 in the background so a slow Redis never slows a
 * response; explicit `set`/`delete`/`invalidateTags` wait for Redis (bounded
 * by the guard) and fall back to L1 plus a replay queue.
 */
export class Engine {
  /** one flight per key in this process, and the cross-instance lease */
  readonly #flights: Flights
  /** drops, marks, tells Redis and replays (see Invalidations) */
  readonly #inv: Invalidations

  constructor (
    readonly l1: L1,
    readonly l2: L2 | null,
    readonly bus: Bus | null,
    readonly metrics: CacheMetrics,
    readonly now: () => number,
    readonly log: FastifyBaseLogger,
    replayLimit: number
  ) {
    this.#inv = new Invalidations({ l1, l2, bus, metrics, now, log, replayLimit })
    this.#flights = new Flights({ l2, bus, metrics, fills: this.#inv.fills, now, usable: (t, entry, freshOnly, flight) => this.#usable(t, entry, freshOnly, flight) })
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
    const seq = this.#inv.seq
    try {
      const { entry } = await this.l2.read(t.key, [])
      const at = this.now()
      if (entry !== undefined && at < entry.freshUntil && !this.#inv.invalidatedSince(t, entry)) {
        t.metrics.l2Hit.inc()
        if (t.ns.l1 && seq === this.#inv.seq) this.l1.set(t.key, entry, at)
        return entry
      }
    } catch {
      this.metrics.l2Error('get')
    }
    t.metrics.l2Miss.inc()
    return undefined
  }

  #revalidate<T> (t: Target, factory: Factory<T>): void {
    if (this.#flights.has(t.key)) return
    this.#load(t, factory, undefined, true).catch((err: unknown) => {
      this.log.warn({ err: errMessage(err), namespace: t.ns.name }, '@headroom/cache: background refresh failed; the stale value stays')
    })
  }

  /** One flight per key in this process: concurrent misses share it. */
  #load<T> (t: Target, factory: Factory<T>, stale: Entry | undefined, refresh: boolean, read?: Read): Promise<Entry | undefined> {
    return this.#flights.load(t, read, (flight) => this.#fly(t, factory, stale, refresh, flight))
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
      const outcome = await this.#flights.lease(t, flight)
      if (outcome.entry) return outcome.entry
      fence = outcome.fence
      if (outcome.gens) gens = outcome.gens
    }
    return compute({
      l1: this.l1,
      now: this.now,
      log: this.log,
      store: (entry, at) => { if (this.l2 && gens) this.#storeL2(t, entry, gens, fence, at) },
      release: () => { if (fence) this.#flights.release(t.key, fence) }
    }, t, factory, stale, flight)
  }

  /** An L2 entry this read can use: fresh, or in its revalidate window (then refreshed in the background). */
  #usable (t: Target, entry: Entry | undefined, refresh: boolean, flight: Flight): Entry | undefined {
    if (!entry || this.#inv.invalidatedSince(t, entry)) return undefined
    const now = this.now()
    const fresh = now < entry.freshUntil
    if (!fresh && (refresh || now >= entry.swrUntil)) return undefined
    t.metrics.l2Hit.inc()
    if (t.ns.l1 && !flight.poisoned) this.l1.set(t.key, entry, now)
    if (!fresh) t.metrics.staleSwr.inc()
    flight.tier = fresh ? 'l2' : 'stale'
    return entry
  }

  #storeL2 (t: Target, entry: Entry, gens: string[], fence: string, now: number): void {
    const message = fence ? this.bus!.message({ l: t.key }) : ''
    this.l2!.store(t.key, entry, gens, fence, message, now).catch(() => {
      this.metrics.l2Error('set')
    })
  }

  // ---- writes ----

  async set (t: Target, value: unknown): Promise<void> {
    const raw = JSON.stringify(value)
    if (raw === undefined) return this.delete([t.key])
    const now = this.now()
    const entry = makeEntry(raw, t.policy, t.tags, now)
    this.#inv.local([t.key], [])
    if (t.ns.l1) this.l1.set(t.key, entry, now)
    if (!this.l2) return
    try {
      await this.l2.set(t.key, entry, this.bus?.message({ k: [t.key] }) ?? '', now)
      // the same for a set: L1 keeps the value it wrote, and nothing a read filled meanwhile
      const held = this.l1.get(t.key, this.now())
      if (held !== undefined && (held.raw !== entry.raw || held.createdAt !== entry.createdAt)) this.#inv.local([t.key], [])
      else this.#inv.poison([t.key])
      this.#inv.checkReplicated([t.key], [], await this.l2.replicated())
    } catch (err) {
      this.metrics.l2Error('set')
      this.#inv.queue([t.key], [])
      this.log.warn({ err: errMessage(err) }, '@headroom/cache: set did not reach Redis; other instances keep their L1 copy until it expires')
    }
  }

  /** Stores a response (or any value) written outside a factory, with the write path's conditional L2 store (under `fence`, from `lease`). */
  put (t: Target, entry: Entry, gens: string[] | null, fence = '', fill?: Fill): void {
    if (fill !== undefined) this.#inv.fills.untrack(fill)
    const now = this.now()
    // invalidated while the response was produced: it may be what the invalidation removed
    if (fill?.poisoned === true) {
      if (fence) this.#flights.release(t.key, fence)
      return
    }
    if (t.ns.l1) this.l1.set(t.key, entry, now)
    if (this.l2 && gens) this.#storeL2(t, entry, gens, fence, now)
    else if (fence) this.#flights.release(t.key, fence)
  }

  /** Registers a value about to be produced outside a factory (a route's response), for `put` or `release`: an invalidation meanwhile marks it. */
  fill (t: Target): Fill {
    const fill: Fill = { key: t.key, tags: t.tags, poisoned: false }
    this.#inv.fills.track(fill)
    return fill
  }

  /** Cross-instance coalescing for a value produced outside a factory (a route's response): see Flights.leaseOutside. */
  lease (t: Target): Promise<LeaseOutcome> {
    return this.#flights.leaseOutside(t)
  }

  /** Gives up a lease taken by `lease` without storing (the response was not cacheable): the waiters take it in turn. */
  release (t: Target, fence: string, fill?: Fill): void {
    if (fill !== undefined) this.#inv.fills.untrack(fill)
    if (fence && this.l2 && this.bus) this.#flights.release(t.key, fence)
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

  delete (keys: string[]): Promise<void> {
    return this.#inv.delete(keys)
  }

  invalidateTags (tags: string[]): Promise<void> {
    return this.#inv.invalidateTags(tags)
  }

  /** From another instance, over the bus. */
  onRemoteInvalidate (keys: string[], tags: string[]): void {
    this.#inv.remote(keys, tags)
  }

  onResync (): void {
    this.#inv.resync()
  }

  get pendingReplay (): number {
    return this.#inv.pendingReplay
  }

  stop (): void {
    this.#inv.stop()
  }
}
