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
  const counter = (name: string, help: string) => metric(registry, name, (registers) => new Counter({ name, help, registers }))
  const gauge = (name: string, help: string) => metric(registry, name, (registers) => new Gauge({ name, help, registers }))
  return {
    created: counter('headroom_session_created_total', 'Sessions created (first save of a new id, including regenerate)'),
    destroyed: counter('headroom_session_destroyed_total', 'Sessions destroyed (log-out, regenerate, log-out-everywhere)'),
    redisErrors: counter('headroom_session_redis_errors_total', 'Redis commands of the session store that failed or timed out'),
    fallbackActive: gauge('headroom_session_fallback_active', '1 while sessions are served from the in-memory fallback because Redis is unavailable'),
    fallbackSessions: gauge('headroom_session_fallback_sessions', 'Sessions written while Redis was unavailable and not yet written back'),
    writtenBack: counter('headroom_session_written_back_total', 'Sessions written (or deleted) in Redis after an outage, from the fallback'),
    lost: counter('headroom_session_fallback_evicted_total', 'Sessions written during an outage that the bounded fallback evicted before Redis returned'),
    hotHits: counter('headroom_session_hot_hits_total', 'Session reads served from the hot-session cache (no Redis read)'),
    hotMisses: counter('headroom_session_hot_misses_total', 'Session reads from Redis while the hot-session cache is on (not held, invalidated, aged out, or the bus could not vouch for it)'),
    hotInvalidations: counter('headroom_session_hot_invalidations_total', 'Session ids dropped from the hot-session cache by a change on this or another instance'),
    hotResyncs: counter('headroom_session_hot_resyncs_total', 'Times the hot-session cache was dropped wholesale because the invalidation bus had been interrupted')
  }
}
