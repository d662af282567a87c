import { raceTimeout } from '@headroom/core'
import type { Entry } from './entry.js'

/** One cached route key being produced by a request's handler in this process. */
export interface RouteFlight {
  /** the entry stored from the leader's response, or undefined if it was not cacheable (error, cookie, private...) */
  readonly done: Promise<Entry | undefined>
  /** idempotent: the first call wins */
  settle (entry?: Entry): void
}

/**
 * Route coalescing, like `wrap`'s in-flight map: the first request that
 * misses a key runs the handler; concurrent misses of the same (fully
 * scoped, so per-user) key wait for its stored response instead of running
 * the handler too.
 */
export class RouteFlights {
  readonly #flights = new Map<string, RouteFlight>()

  running (key: string): RouteFlight | undefined {
    return this.#flights.get(key)
  }

  start (key: string): RouteFlight {
    let settleDone!: (entry: Entry | undefined) => void
    const done = new Promise<Entry | undefined>((resolve) => { settleDone = resolve })
    let settled = false
    const flight: RouteFlight = {
      done,
      settle: (entry) => {
        if (settled) return
        settled = true
        if (this.#flights.get(key) === flight) this.#flights.delete(key)
        settleDone(entry)
      }
    }
    this.#flights.set(key, flight)
    return flight
  }

  /** the leader's entry, or undefined once `ms` have passed (a handler that hangs does not hold its waiters longer) */
  static wait (flight: RouteFlight, ms: number): Promise<Entry | undefined> {
    return raceTimeout(flight.done.catch(() => undefined), ms, () => undefined)
  }
}
