import { failSpan, recordingSpan, tracer } from '@headroom/core'
import type { Span } from '@opentelemetry/api'
import type { Target } from './engine.js'

/**
 * Where a read was answered from, on a span: the namespace (a configured,
 * bounded name), the tier and whether it joined another caller's flight.
 * Never the key: keys of shared namespaces name things too (`account:42`),
 * and per-user keys carry the user.
 */
export type Tier = 'l1' | 'l2' | 'miss' | 'stale'

const cacheTracer = tracer('@headroom/cache')

export const NAMESPACE = 'headroom.cache.namespace'
export const TIER = 'headroom.cache.tier'
export const COALESCED = 'headroom.cache.coalesced'
export const PER_USER = 'headroom.cache.per_user'

/**
 * `cache.wrap` / `cache.get`: a span of its own, so the factory's queries are
 * its children; made only inside a recording span (a traced request or job).
 * An L1 hit takes a microsecond or two, and even a no-op span costs about a
 * tenth of that; looking at the active span costs half as much, and a read
 * outside any trace is not worth a root span of its own.
 */
export function startRead (operation: 'cache.wrap' | 'cache.get', t: Target): Span | undefined {
  if (recordingSpan() === undefined) return undefined
  const span = cacheTracer.startSpan(operation)
  if (!span.isRecording()) {
    // sampled out by the SDK all the same
    span.end()
    return undefined
  }
  span.setAttribute(NAMESPACE, t.ns.name)
  span.setAttribute(PER_USER, t.ns.perUser)
  return span
}

export function endRead (span: Span | undefined, tier: Tier | undefined, coalesced: boolean, err?: unknown): void {
  if (span === undefined) return
  if (tier !== undefined) span.setAttribute(TIER, tier)
  span.setAttribute(COALESCED, coalesced)
  if (err !== undefined) failSpan(span, err)
  span.end()
}

/** a cached route's outcome, on the request's own span (the route is the work; the cache only decides) */
export function annotateRequest (t: Target, tier: Tier, coalesced: boolean): void {
  const span = recordingSpan()
  if (span === undefined) return
  span.setAttribute(NAMESPACE, t.ns.name)
  span.setAttribute(PER_USER, t.ns.perUser)
  span.setAttribute(TIER, tier)
  span.setAttribute(COALESCED, coalesced)
}
