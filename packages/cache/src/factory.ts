import type { FastifyBaseLogger } from 'fastify'
import { raceTimeout } from '@headroom/core'
import { expiresAt, makeEntry, type Entry } from './entry.js'
import { FactoryTimeout } from './errors.js'
import type { Flight, Target } from './singleflight.js'
import { errMessage } from './invalidation.js'
import type { L1 } from './l1.js'

export interface FactoryContext {
  /** aborted when the hard timeout gives up on this call */
  signal: AbortSignal
}

export type Factory<T> = (ctx: FactoryContext) => T | Promise<T>

/** What a factory's run needs from the engine: where the produced entry goes. */
export interface FactoryHost {
  l1: L1
  now: () => number
  log: FastifyBaseLogger
  /** stores the entry in L2 (in the background, under the flight's lease fence, if any) */
  store: (entry: Entry, now: number) => void
  /** gives up the flight's lease, if it holds one, without storing */
  release: () => void
}

const ignore = (): void => {}

/**
 * A miss's factory run: bounded by the policy's hard timeout (its signal
 * aborted then, a 503 the client may retry), its entry stored in L1 and L2
 * unless an invalidation poisoned the flight meanwhile; with a stale value
 * at hand, the soft timeout answers with it while the factory finishes in
 * the background, and within the grace period a factory error does too
 * (stale-if-error; an error is never cached).
 */
export async function compute<T> (host: FactoryHost, t: Target, factory: Factory<T>, stale: Entry | undefined, flight: Flight): Promise<Entry | undefined> {
  const { policy, metrics } = t
  const controller = new AbortController()
  const started = performance.now()
  const produced = raceTimeout(Promise.resolve().then(() => factory({ signal: controller.signal })), policy.hardTimeout, () => {
    // a 503 the client may retry: Fastify's error handler sends `headers`
    const err = Object.assign(new FactoryTimeout(policy.hardTimeout), { headers: { 'retry-after': '1' } })
    controller.abort(err)
    throw err
  })

  const stored = produced.then((value) => {
    metrics.factoryOk.inc()
    metrics.factoryDuration.observe((performance.now() - started) / 1000)
    const raw = JSON.stringify(value)
    if (raw === undefined) return undefined
    const now = host.now()
    const entry = makeEntry(raw, policy, t.tags, now)
    if (!flight.poisoned) {
      if (t.ns.l1) host.l1.set(t.key, entry, now)
      host.store(entry, now)
    } else {
      host.release()
    }
    return entry
  }, (err: unknown) => {
    if (err instanceof FactoryTimeout) metrics.factoryTimeout.inc()
    else metrics.factoryError.inc()
    metrics.factoryDuration.observe((performance.now() - started) / 1000)
    host.release()
    throw err
  })

  const usableStale = stale !== undefined && host.now() < expiresAt(stale) ? stale : undefined
  let result: Promise<Entry | undefined> = stored
  if (usableStale && policy.timeout > 0) {
    // soft timeout: answer with the stale value, let the factory finish and store in the background
    flight.background = stored.then(ignore, ignore)
    result = raceTimeout(stored, policy.timeout, () => {
      metrics.staleTimeout.inc()
      return usableStale
    })
  }
  try {
    const entry = await result
    if (entry !== undefined && entry === usableStale) flight.tier = 'stale'
    return entry
  } catch (err) {
    // stale-if-error: within the grace period the stale value answers; the error is never cached
    if (stale !== undefined && host.now() < stale.graceUntil) {
      metrics.staleError.inc()
      flight.tier = 'stale'
      host.log.warn({ err: errMessage(err), namespace: t.ns.name }, '@headroom/cache: factory failed, serving the stale value')
      return stale
    }
    throw err
  }
}
