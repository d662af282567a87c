import type { Span } from '@opentelemetry/api'
import type { Policy } from './options.js'

/**
 * The decision, as attributes of the request's own span (a decision is not
 * a piece of work of its own): the policy's name and limit, the verdict,
 * who decided and what is left. Never the client's key or address.
 */
export type Decision = 'allowed' | 'refused' | 'unavailable'
/** 'redis'; 'local' without Redis; 'fallback' while Redis is down; 'block' for a key Redis refused, held here until its retry time */
export type DecidedBy = 'redis' | 'local' | 'fallback' | 'block'

export function annotate (span: Span, policy: Policy, decision: Decision, store: DecidedBy, remaining: number | undefined): void {
  span.setAttribute('headroom.ratelimit.decision', decision)
  span.setAttribute('headroom.ratelimit.store', store)
  span.setAttribute('headroom.ratelimit.policy', policy.name)
  span.setAttribute('headroom.ratelimit.limit', policy.limit)
  if (remaining !== undefined) span.setAttribute('headroom.ratelimit.remaining', remaining)
}
