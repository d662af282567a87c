import type { Bus } from './bus.js'
import type { Entry } from './entry.js'
import type { Fill, Fills } from './fills.js'
import type { L2 } from './l2.js'
import type { CacheMetrics, NamespaceMetrics } from './metrics.js'
import type { ResolvedNamespace, ResolvedPolicy } from './options.js'
import type { Tier } from './tracing.js'

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

export interface Flight extends Fill {
  promise: Promise<Entry | undefined>
  /** the factory's store, still running after a soft timeout answered with the stale value */
  background?: Promise<void>
  /** where its entry came from, for the spans of the reads that share it */
  tier: Tier
  /** it waited for another instance's lease */
  leaseWaited: boolean
}

/** what a traced read learns on its way: the flight it ran or joined */
export interface Read { flight: Flight | undefined, joined: boolean }

/** An L2 entry a read can use (fresh, or stale within its window unless `freshOnly`), recorded on `flight`; else undefined. */
export type Usable = (t: Target, entry: Entry | undefined, freshOnly: boolean, flight: Flight) => Entry | undefined

export interface FlightsDeps {
  l2: L2 | null
  bus: Bus | null
  metrics: CacheMetrics
  fills: Fills
  now: () => number
  usable: Usable
}

const ignore = (): void => {}

/**
 * Coalescing, in this process and across instances. One flight per key in
 * this process: concurrent misses share it. Across instances, on a `lease`
 * namespace, one instance takes the key's lease in Redis and the others wait
 * (woken by the holder's bus message) and read what it stored.
 */
export class Flights {
  readonly #inflight = new Map<string, Flight>()
  readonly #d: FlightsDeps

  constructor (deps: FlightsDeps) {
    this.#d = deps
  }

  static create (t: Target): Flight {
    return { promise: undefined as never, key: t.key, tags: t.tags, poisoned: false, tier: 'miss', leaseWaited: false }
  }

  has (key: string): boolean {
    return this.#inflight.has(key)
  }

  /** Joins the key's flight, or starts one with `fly`; `read` learns which. */
  load (t: Target, read: Read | undefined, fly: (flight: Flight) => Promise<Entry | undefined>): Promise<Entry | undefined> {
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
    const flight = Flights.create(t)
    if (read !== undefined) read.flight = flight
    const { fills } = this.#d
    this.#inflight.set(t.key, flight)
    fills.track(flight)
    flight.promise = fly(flight).finally(() => {
      if (this.#inflight.get(t.key) === flight) this.#inflight.delete(t.key)
      // answered by a soft timeout: the factory may still store, so an invalidation must still reach it
      if (flight.background === undefined) fills.untrack(flight)
      else flight.background.then(() => fills.untrack(flight), ignore)
    })
    return flight.promise
  }

  /**
   * Cross-instance coalescing: take the key's lease, or wait (woken by the
   * holder's pub/sub message, bounded by the lease's remaining time) and
   * read what it stored. Redis trouble: carry on with per-process coalescing.
   */
  async lease (t: Target, flight: Flight, freshOnly = false): Promise<LeaseOutcome> {
    const { l2, bus, now, usable } = this.#d as FlightsDeps & { l2: L2, bus: Bus }
    const deadline = now() + t.policy.hardTimeout
    let waited = false
    try {
      while (now() < deadline) {
        const lease = await l2.acquire(t.key, t.policy.hardTimeout + 1000)
        if (lease.acquired) return { fence: lease.token }
        if (!waited) t.metrics.coalescedCluster.inc()
        waited = true
        flight.leaseWaited = true
        const wake = bus.waitForLease(t.key, Math.min(lease.pttl + 20, deadline - now()))
        // the holder may have finished between our ACQUIRE and the waiter: read once before sleeping
        let read = await l2.read(t.key, t.tags)
        let found = usable(t, read.entry, freshOnly, flight)
        if (found) return { entry: found, fence: '' }
        await wake
        read = await l2.read(t.key, t.tags)
        found = usable(t, read.entry, freshOnly, flight)
        if (found) return { entry: found, fence: '' }
        if (!bus.connected) return { fence: '', gens: read.gens }
      }
    } catch {
      this.#d.metrics.l2Error('lease')
    }
    return { fence: '' }
  }

  /**
   * The lease for a value produced outside a factory (a route's response):
   * on a `lease` namespace, take the key's lease or wait for the holder and
   * return the fresh entry it stored. Without a lease namespace, or with
   * Redis down, `{ fence: '' }`: produce it here.
   */
  async leaseOutside (t: Target): Promise<LeaseOutcome> {
    if (!t.ns.lease || !this.#d.l2 || !this.#d.bus) return { fence: '' }
    const flight = Flights.create(t)
    this.#d.fills.track(flight)
    try {
      return await this.lease(t, flight, true)
    } finally {
      this.#d.fills.untrack(flight)
    }
  }

  /** Gives up a lease without storing: the waiters take it in turn. */
  release (key: string, fence: string): void {
    this.#d.l2!.release(key, fence, this.#d.bus!.message({ l: key })).catch(() => this.#d.metrics.l2Error('lease'))
  }
}
