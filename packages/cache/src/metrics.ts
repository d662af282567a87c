import { metric } from '@headroom/core'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

type C = ReturnType<Counter['labels']>

/** Counters bound to one namespace once, so the hot path does no label lookups. */
export interface NamespaceMetrics {
  l1Hit: C
  l1Miss: C
  l2Hit: C
  l2Miss: C
  staleSwr: C
  staleError: C
  staleTimeout: C
  factoryOk: C
  factoryError: C
  factoryTimeout: C
  factoryDuration: ReturnType<Histogram['labels']>
  coalescedProcess: C
  coalescedCluster: C
}

export interface CacheMetrics {
  ns (name: string): NamespaceMetrics
  l2Error (op: string): void
  invalidationsReceived: Counter
}

export function createMetrics (registry: Registry, sample: () => { bytes: number, entries: number, degraded: boolean }): CacheMetrics {
  const hits = metric(registry, 'headroom_cache_hits_total', (registers) => new Counter({
    name: 'headroom_cache_hits_total', help: 'Cache hits by tier (l1, l2) and namespace', labelNames: ['namespace', 'tier'], registers
  }))
  const misses = metric(registry, 'headroom_cache_misses_total', (registers) => new Counter({
    name: 'headroom_cache_misses_total', help: 'Cache misses by tier (l1, l2) and namespace', labelNames: ['namespace', 'tier'], registers
  }))
  const stale = metric(registry, 'headroom_cache_stale_served_total', (registers) => new Counter({
    name: 'headroom_cache_stale_served_total', help: 'Stale values served, by reason (revalidate, error, timeout)', labelNames: ['namespace', 'reason'], registers
  }))
  const factory = metric(registry, 'headroom_cache_factory_calls_total', (registers) => new Counter({
    name: 'headroom_cache_factory_calls_total', help: 'Factory calls by result (success, error, timeout)', labelNames: ['namespace', 'result'], registers
  }))
  const duration = metric(registry, 'headroom_cache_factory_duration_seconds', (registers) => new Histogram({
    name: 'headroom_cache_factory_duration_seconds',
    help: 'Factory durations',
    labelNames: ['namespace'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
    registers
  }))
  const coalesced = metric(registry, 'headroom_cache_coalesced_waits_total', (registers) => new Counter({
    name: 'headroom_cache_coalesced_waits_total', help: 'Calls that waited for a factory already running, in this process or (lease) another instance', labelNames: ['namespace', 'scope'], registers
  }))
  const l2Errors = metric(registry, 'headroom_cache_l2_errors_total', (registers) => new Counter({
    name: 'headroom_cache_l2_errors_total', help: 'Failed Redis (L2) operations by operation', labelNames: ['op'], registers
  }))
  const invalidationsReceived = metric(registry, 'headroom_cache_invalidations_received_total', (registers) => new Counter({
    name: 'headroom_cache_invalidations_received_total', help: 'Invalidation messages received from other instances', registers
  }))
  metric(registry, 'headroom_cache_l1_bytes', (registers) => new Gauge({
    name: 'headroom_cache_l1_bytes', help: 'Bytes of serialized values held in L1', registers, collect () { this.set(sample().bytes) }
  }))
  metric(registry, 'headroom_cache_l1_entries', (registers) => new Gauge({
    name: 'headroom_cache_l1_entries', help: 'Entries held in L1', registers, collect () { this.set(sample().entries) }
  }))
  metric(registry, 'headroom_cache_degraded', (registers) => new Gauge({
    name: 'headroom_cache_degraded', help: '1 while Redis (L2 and the invalidation bus) is unavailable and the cache serves from L1 and the factory', registers, collect () { this.set(sample().degraded ? 1 : 0) }
  }))

  const byNs = new Map<string, NamespaceMetrics>()
  return {
    ns (name) {
      let m = byNs.get(name)
      if (!m) {
        m = {
          l1Hit: hits.labels(name, 'l1'),
          l1Miss: misses.labels(name, 'l1'),
          l2Hit: hits.labels(name, 'l2'),
          l2Miss: misses.labels(name, 'l2'),
          staleSwr: stale.labels(name, 'revalidate'),
          staleError: stale.labels(name, 'error'),
          staleTimeout: stale.labels(name, 'timeout'),
          factoryOk: factory.labels(name, 'success'),
          factoryError: factory.labels(name, 'error'),
          factoryTimeout: factory.labels(name, 'timeout'),
          factoryDuration: duration.labels(name),
          coalescedProcess: coalesced.labels(name, 'process'),
          coalescedCluster: coalesced.labels(name, 'cluster')
        }
        byNs.set(name, m)
      }
      return m
    },
    l2Error (op) { l2Errors.inc({ op }) },
    invalidationsReceived
  }
}
