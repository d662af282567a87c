import { childSpan, failSpan, tracer } from '@headroom/core'
import type { Span } from '@opentelemetry/api'

/**
 * Spans of the session store: where a session was loaded from and where it
 * was saved or destroyed. Never the session id, the cookie or the user.
 */
const sessionTracer = tracer('@headroom/session')

/** where a session was read: Redis, a Cluster replica of its slot (its master is down), this instance's memory (the fallback), or its hot sessions */
export type Source = 'redis' | 'replica' | 'memory' | 'hot'

export const SOURCE = 'headroom.session.source'
export const FOUND = 'headroom.session.found'
export const STORE = 'headroom.session.store'
export const FALLBACK = 'headroom.session.fallback'

/** inside a recording span only (`childSpan`): a sampled-out request's session work makes no span */
export function startSpan (name: 'session.load' | 'session.save' | 'session.destroy' | 'session.touch'): Span {
  return childSpan(sessionTracer, name)
}

export function endLoad (span: Span, source: Source, found: boolean, fallback: boolean): void {
  if (span.isRecording()) {
    span.setAttribute(SOURCE, source)
    span.setAttribute(FOUND, found)
    span.setAttribute(FALLBACK, fallback)
  }
  span.end()
}

/** a save, destroy or touch: which store took it ('memory' while the fallback serves the session) */
export function endWrite (span: Span, store: 'redis' | 'memory', attributes?: Record<string, boolean>, err?: unknown): void {
  if (span.isRecording()) {
    span.setAttribute(STORE, store)
    span.setAttribute(FALLBACK, store === 'memory')
    if (attributes !== undefined) span.setAttributes(attributes)
    if (err !== undefined) failSpan(span, err)
  }
  span.end()
}
