import { metric } from '@headroom/core'
import { Counter, Gauge, type Registry } from 'prom-client'

export interface SessionMetrics {
  created: Counter
  destroyed: Counter
  redisErrors: Counter
  fallbackActive: Gauge
  fallbackSessions: Gauge
  writtenBack: Counter
  lost: Counter
  hotHits: Counter
  hotMisses: Counter
  hotInvalidations: Counter
  hotResyncs: Counter
}

/** Get-or-create, so two instances of the plugin in one app share their metrics. */
export function createMetrics (registry: Registry): SessionMetrics {
  return {
    created: metric(registry, 'headroom_session_created_total', (registers) => new Counter({
      name: 'headroom_session_created_total', help: 'Sessions created (first save of a new id, including regenerate)', registers
    })),
    destroyed: metric(registry, 'headroom_session_destroyed_total', (registers) => new Counter({
      name: 'headroom_session_destroyed_total', help: 'Sessions destroyed (log-out, regenerate, log-out-everywhere)', registers
    })),
    redisErrors: metric(registry, 'headroom_session_redis_errors_total', (registers) => new Counter({
      name: 'headroom_session_redis_errors_total', help: 'Redis commands of the session store that failed or timed out', registers
    })),
    fallbackActive: metric(registry, 'headroom_session_fallback_active', (registers) => new Gauge({
      name: 'headroom_session_fallback_active', help: '1 while sessions are served from the in-memory fallback because Redis is unavailable', registers
    })),
    fallbackSessions: metric(registry, 'headroom_session_fallback_sessions', (registers) => new Gauge({
      name: 'headroom_session_fallback_sessions', help: 'Sessions written while Redis was unavailable and not yet written back', registers
    })),
    writtenBack: metric(registry, 'headroom_session_written_back_total', (registers) => new Counter({
      name: 'headroom_session_written_back_total', help: 'Sessions written (or deleted) in Redis after an outage, from the fallback', registers
    })),
    lost: metric(registry, 'headroom_session_fallback_evicted_total', (registers) => new Counter({
      name: 'headroom_session_fallback_evicted_total', help: 'Sessions written during an outage that the bounded fallback evicted before Redis returned', registers
    })),
    hotHits: metric(registry, 'headroom_session_hot_hits_total', (registers) => new Counter({
      name: 'headroom_session_hot_hits_total', help: 'Session reads served from the hot-session cache (no Redis read)', registers
    })),
    hotMisses: metric(registry, 'headroom_session_hot_misses_total', (registers) => new Counter({
      name: 'headroom_session_hot_misses_total', help: 'Session reads from Redis while the hot-session cache is on (not held, invalidated, aged out, or the bus could not vouch for it)', registers
    })),
    hotInvalidations: metric(registry, 'headroom_session_hot_invalidations_total', (registers) => new Counter({
      name: 'headroom_session_hot_invalidations_total', help: 'Session ids dropped from the hot-session cache by a change on this or another instance', registers
    })),
    hotResyncs: metric(registry, 'headroom_session_hot_resyncs_total', (registers) => new Counter({
      name: 'headroom_session_hot_resyncs_total', help: 'Times the hot-session cache was dropped wholesale because the invalidation bus had been interrupted', registers
    }))
  }
}
