import { Counter, Gauge, type Registry } from 'prom-client'
import { metric } from '@headroom/core'

export type Outcome = 'allowed' | 'limited'

/**
 * Labels are bounded: `policy` is a configured policy name (or a route
 * pattern with an inline limit), `source` one of five values.
 */
export function createMetrics (registry: Registry) {
  const requests = metric(registry, 'headroom_ratelimit_requests_total', (registers) => new Counter({
    name: 'headroom_ratelimit_requests_total',
    help: 'Requests counted by the rate limiter, by policy and outcome (allowed | limited).',
    labelNames: ['policy', 'outcome'],
    registers
  }))
  const fallback = metric(registry, 'headroom_ratelimit_fallback_total', (registers) => new Counter({
    name: 'headroom_ratelimit_fallback_total',
    help: 'Requests decided without Redis, by policy and source: local (in-process limiter while Redis is down), open (let through while Redis is down), closed (refused while Redis is down), block (client Redis refused, answered locally until its retry time).',
    labelNames: ['policy', 'source'],
    registers
  }))
  const fallbackActive = metric(registry, 'headroom_ratelimit_fallback_active', (registers) => new Gauge({
    name: 'headroom_ratelimit_fallback_active',
    help: '1 while the Redis circuit is open and the store-down policy applies, else 0.',
    registers
  }))
  return { requests, fallback, fallbackActive }
}

export type Metrics = ReturnType<typeof createMetrics>
