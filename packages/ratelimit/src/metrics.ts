import { Counter, Gauge, type Registry } from 'prom-client'
import { metric } from '@headroom/core'

export type Outcome = 'allowed' | 'limited'

/**
 * A counter bumped on the request path as a plain number and added to the
 * prom-client counter when the registry is scraped: labelled `inc()` hashes
 * its labels on every call, which costs more than the rest of an allowed
 * request's bookkeeping.
 */
export interface Tally {
  n: number
}

/** Per registry: the tallies to drain into each counter at collect time. */
const tallies = new WeakMap<Registry, Map<string, Array<{ labels: Record<string, string>, tally: Tally }>>>()

function drained (registry: Registry, name: string) {
  return function collect (this: Counter) {
    for (const { labels, tally } of tallies.get(registry)?.get(name) ?? []) {
      if (tally.n > 0) {
        this.inc(labels, tally.n)
        tally.n = 0
      }
    }
  }
}

function tally (registry: Registry, counter: Counter, name: string, labels: Record<string, string>): Tally {
  let byName = tallies.get(registry)
  if (!byName) tallies.set(registry, (byName = new Map()))
  let list = byName.get(name)
  if (!list) byName.set(name, (list = []))
  const found = list.find((e) => Object.entries(labels).every(([k, v]) => e.labels[k] === v))
  if (found) return found.tally
  const created = { n: 0 }
  list.push({ labels, tally: created })
  // a zero sample from the start, so rate() sees the first increment
  counter.inc(labels, 0)
  return created
}

/**
 * Labels are bounded: `policy` is a configured policy or group name (or a
 * route pattern with an inline limit), `outcome` and `source` a few fixed values.
 */
export function createMetrics (registry: Registry, inFallback: () => boolean) {
  const requests = metric(registry, 'headroom_ratelimit_requests_total', (registers) => new Counter({
    name: 'headroom_ratelimit_requests_total',
    help: 'Requests counted by the rate limiter, by policy and outcome (allowed | limited).',
    labelNames: ['policy', 'outcome'],
    registers,
    collect: drained(registry, 'headroom_ratelimit_requests_total')
  }))
  const fallback = metric(registry, 'headroom_ratelimit_fallback_total', (registers) => new Counter({
    name: 'headroom_ratelimit_fallback_total',
    help: 'Requests decided without Redis, by policy and source: local (in-process limiter while Redis is down), open (let through while Redis is down), closed (refused while Redis is down), block (client Redis refused, answered locally until its retry time).',
    labelNames: ['policy', 'source'],
    registers
  }))
  metric(registry, 'headroom_ratelimit_fallback_active', (registers) => new Gauge({
    name: 'headroom_ratelimit_fallback_active',
    help: '1 while decisions are made without Redis (the circuit open, or the client not connected) and the store-down policy applies, else 0.',
    registers,
    // read when scraped, from what decides requests: a Redis that refuses connections fails
    // every command at once and never opens the circuit, yet every decision is local
    collect (this: Gauge) { this.set(inFallback() ? 1 : 0) }
  }))
  return {
    requests: (policy: string, outcome: Outcome): Tally =>
      tally(registry, requests, 'headroom_ratelimit_requests_total', { policy, outcome }),
    fallback
  }
}

export type Metrics = ReturnType<typeof createMetrics>
