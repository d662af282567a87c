import { mulberry32 } from '../test/prng.js'

/** A request trace: the key (1-based rank) of request i, and whether it is a write. */
export interface Trace { keys: Int32Array, writes: Uint8Array }

/** A deterministic request trace: Zipf(1.0) key ranks over `keys` rows, `writeShare` of the requests writes. */
export function zipfTrace (length: number, seed: number, keys: number, writeShare: number): Trace {
  const cdf = new Float64Array(keys)
  let sum = 0
  for (let k = 1; k <= keys; k++) { sum += 1 / k; cdf[k - 1] = sum }
  for (let i = 0; i < keys; i++) cdf[i]! /= sum
  const rnd = mulberry32(seed)
  const out: Trace = { keys: new Int32Array(length), writes: new Uint8Array(length) }
  for (let i = 0; i < length; i++) {
    const r = rnd()
    let lo = 0
    let hi = keys - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid]! < r) lo = mid + 1
      else hi = mid
    }
    out.keys[i] = lo + 1
    out.writes[i] = rnd() < writeShare ? 1 : 0
  }
  return out
}

/**
 * Database reads an ideal cache needs on the trace at `rate` requests per
 * second: unbounded, one for all instances, perfectly coherent (a write drops
 * the key at once), same TTL, every request answered in no time.
 */
export function idealReads (t: Trace, ttlMs: number, rate: number): number {
  const expires = new Map<number, number>()
  let reads = 0
  for (let i = 0; i < t.keys.length; i++) {
    const now = (i * 1000) / rate
    const key = t.keys[i]!
    if (t.writes[i]) { expires.delete(key); continue }
    const until = expires.get(key)
    if (until !== undefined && now < until) continue
    reads++
    expires.set(key, now + ttlMs)
  }
  return reads
}

/**
 * Deals requests 0..length-1 to `instances` instances round robin (request i
 * to instance i % instances) and runs them with real concurrency, at most
 * `perInstance` in flight on each. Requests start in trace order: request i
 * starts only once request i - 1 has, and waits for a free slot on its own
 * instance, so the instances move through the trace together and a request's
 * position in the trace is its time (the virtual clock's). `onStart` runs
 * synchronously just before request i starts. Resolves when every request
 * has completed; rejects with the first request's error (after the others
 * in flight have settled).
 */
export async function deal (
  length: number,
  instances: number,
  perInstance: number,
  run: (i: number, instance: number) => Promise<void>,
  onStart?: (i: number) => void
): Promise<void> {
  if (!Number.isInteger(instances) || instances < 1) throw new RangeError('instances must be a positive integer')
  if (!Number.isInteger(perInstance) || perInstance < 1) throw new RangeError('perInstance must be a positive integer')
  const inFlight = new Array<number>(instances).fill(0)
  /** a slot on an instance freed: wakes the dealer if it waits for that instance */
  let wake: ((instance: number) => void) | undefined
  let failure: { err: unknown } | undefined
  let pending = 0
  let drained: (() => void) | undefined
  for (let i = 0; i < length && failure === undefined; i++) {
    const instance = i % instances
    while (inFlight[instance]! >= perInstance) {
      await new Promise<void>((resolve) => {
        wake = (freed) => { if (freed === instance) { wake = undefined; resolve() } }
      })
    }
    if (failure !== undefined) break
    inFlight[instance]!++
    pending++
    onStart?.(i)
    run(i, instance).catch((err: unknown) => { failure ??= { err } }).finally(() => {
      inFlight[instance]!--
      pending--
      wake?.(instance)
      if (pending === 0) drained?.()
    })
  }
  if (pending > 0) await new Promise<void>((resolve) => { drained = resolve })
  if (failure !== undefined) throw failure.err
}

/** A read in progress, from `Coherence.begin`. */
export interface PendingRead {
  /** the newest version a write of the key had completed with when the read began */
  floor: number
  /** how long before the read began that write completed (ms; 0 without one) */
  since: number
}

/**
 * Coherence as a client sees it: a read must not return a version older than
 * the newest write of its key that completed before the read began. (A write
 * still in flight when the read began may or may not be seen: both are
 * correct.) Versions are the row's, counted up by every write; times are
 * any monotonic clock in ms.
 */
export class Coherence {
  /** per key: the newest version a completed write returned, and when that write completed */
  readonly #completed = new Map<number, { version: number, at: number }>()
  violations = 0
  /** the largest gap, in versions, between what a violating read returned and what it had to see */
  worstVersions = 0
  /** the longest a write had been complete when a read that missed it began (ms) */
  worstSince = 0

  /** A write of `key` completed at `at`, having written `version`. */
  wrote (key: number, version: number, at: number): void {
    const known = this.#completed.get(key)
    if (known === undefined || version > known.version) this.#completed.set(key, { version, at })
  }

  /** A read of `key` begins at `at`: the version it must see at least. */
  begin (key: number, at: number): PendingRead {
    const known = this.#completed.get(key)
    return known === undefined ? { floor: 0, since: 0 } : { floor: known.version, since: at - known.at }
  }

  /** The read returned `version`; false if that is a violation. */
  end (read: PendingRead, version: number): boolean {
    if (version >= read.floor) return true
    this.violations++
    this.worstVersions = Math.max(this.worstVersions, read.floor - version)
    this.worstSince = Math.max(this.worstSince, read.since)
    return false
  }
}
