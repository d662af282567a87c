import { Counter, Gauge, type Registry } from 'prom-client'
import { metric } from '@headroom/core'

export type Outcome = 'allowed' | 'limited'
/** What became of reserved tokens: taken in Redis, spent here, given back, or left to age out. */
export type TokenState = 'reserved' | 'spent' | 'returned' | 'expired'

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
  /** a counter fed by tallies, drained when scraped */
  const tallied = (name: string, help: string, labelNames: string[]) => metric(registry, name, (registers) => new Counter({
    name, help, labelNames, registers, collect: drained(registry, name)
  }))
  const requests = tallied('headroom_ratelimit_requests_total', 'Requests counted by the rate limiter, by policy and outcome (allowed | limited).', ['policy', 'outcome'])
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
  const calls = tallied('headroom_ratelimit_redis_calls_total',
    'Script calls to Redis for requests, by policy; divided by headroom_ratelimit_requests_total: Redis calls per request.', ['policy'])
  const tokens = tallied('headroom_ratelimit_reserved_tokens_total',
    'Tokens reserved ahead of requests, by policy and state: reserved (counted in Redis for this instance), spent (by a request here), returned (given back unspent with a later call), expired (unspent, counted until they age out).',
    ['policy', 'state'])
  // per policy object: a Map lookup on the path of a call, not a label hash
  const byPolicy = new WeakMap<object, { calls: Tally, tokens: Record<TokenState, Tally> }>()
  const of = (policy: { name: string }) => {
    let entry = byPolicy.get(policy)
    if (entry === undefined) {
      const state = (s: TokenState) => tally(registry, tokens, 'headroom_ratelimit_reserved_tokens_total', { policy: policy.name, state: s })
      entry = {
        calls: tally(registry, calls, 'headroom_ratelimit_redis_calls_total', { policy: policy.name }),
        tokens: { reserved: state('reserved'), spent: state('spent'), returned: state('returned'), expired: state('expired') }
      }
      byPolicy.set(policy, entry)
    }
    return entry
  }
  return {
    requests: (policy: string, outcome: Outcome): Tally =>
      tally(registry, requests, 'headroom_ratelimit_requests_total', { policy, outcome }),
    calls: (policy: { name: string }): Tally => of(policy).calls,
    tokens: (policy: { name: string }, state: TokenState): Tally => of(policy).tokens[state],
    fallback
  }
}

export type Metrics = ReturnType<typeof createMetrics>
