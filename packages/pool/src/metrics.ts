import { FastHistogram, metric } from '@headroom/core/contracts'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { StatementCounters } from './statements.js'

/** what a pool reports to the gauges, read at scrape time */
export interface PoolStats {
  readonly label: string
  stats (): { total: number, idle: number, waiting: number }
}

export interface ReplicaStats {
  readonly label: string
  replicaState (): { up: boolean, lagMs: number | null }
}

const kSources = Symbol('headroom.pool.sources')
type WithSources<T> = Gauge & { [kSources]: Set<T> }

function sourced<T> (gauge: Gauge): WithSources<T> {
  const g = gauge as WithSources<T>
  g[kSources] ??= new Set<T>()
  return g
}

export interface Metrics {
  acquireWait: FastHistogram
  queryDuration: FastHistogram
  errors: Counter<'pool' | 'kind'>
  leaks: Counter<'pool'>
  reads: Counter<'target' | 'reason'>
  ejections: Counter<'pool' | 'reason'>
  /** the prepared-statement gauge and counters of one pool */
  statements (pool: string): StatementCounters
  /** starts reporting `source` in the gauges; the returned function stops it */
  track (source: PoolStats): () => void
  trackReplica (source: ReplicaStats): () => void
}

export function createMetrics (registry: Registry): Metrics {
  const connections = sourced<PoolStats>(metric(registry, 'headroom_pool_connections', (registers) => new Gauge({
    name: 'headroom_pool_connections',
    help: 'Connections of each PostgreSQL pool: total open, idle, and queries waiting for one',
    labelNames: ['pool', 'state'],
    registers,
    collect () {
      this.reset()
      for (const source of (this as WithSources<PoolStats>)[kSources]) {
        const s = source.stats()
        this.set({ pool: source.label, state: 'total' }, s.total)
        this.set({ pool: source.label, state: 'idle' }, s.idle)
        this.set({ pool: source.label, state: 'waiting' }, s.waiting)
      }
    }
  })))
  const replicaUp = sourced<ReplicaStats>(metric(registry, 'headroom_pool_replica_up', (registers) => new Gauge({
    name: 'headroom_pool_replica_up',
    help: '1 while a replica takes reads, 0 while it is ejected (down or lagging)',
    labelNames: ['pool'],
    registers,
    collect () {
      this.reset()
      for (const source of (this as WithSources<ReplicaStats>)[kSources]) this.set({ pool: source.label }, source.replicaState().up ? 1 : 0)
    }
  })))
  const replicaLag = sourced<ReplicaStats>(metric(registry, 'headroom_pool_replica_lag_seconds', (registers) => new Gauge({
    name: 'headroom_pool_replica_lag_seconds',
    help: 'Replication lag of each replica at its last health check',
    labelNames: ['pool'],
    registers,
    collect () {
      this.reset()
      for (const source of (this as WithSources<ReplicaStats>)[kSources]) {
        const { lagMs } = source.replicaState()
        if (lagMs !== null) this.set({ pool: source.label }, lagMs / 1000)
      }
    }
  })))
  // replicaUp and replicaLag share one source set: they report the same replicas
  replicaLag[kSources] = replicaUp[kSources]

  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    metric(registry, name, (registers) => new Counter<L>({ name, help, labelNames, registers }))
  const histogram = (name: string, help: string, labelNames: string[], buckets: number[]) =>
    FastHistogram.in(registry, name, help, labelNames, buckets)

  const prepared = metric(registry, 'headroom_pool_prepared_statements', (registers) => new Gauge({
    name: 'headroom_pool_prepared_statements',
    help: 'Named prepared statements held by the open connections of each pool',
    labelNames: ['pool'],
    registers
  }))
  const evictions = counter('headroom_pool_statement_evictions_total', 'Prepared statements deallocated because a connection held statementCacheSize of them', ['pool'])
  const reprepares = counter('headroom_pool_statement_reprepares_total',
    'Prepared statements prepared again and retried: result_type_changed (a schema change, 0A000), missing (the server lost it, 26000) or already_prepared (the session held it, 42P05)', ['pool', 'reason'])

  return {
    acquireWait: histogram('headroom_pool_acquire_wait_seconds', 'Time a query waited for a connection (queue and connect included)',
      ['pool'], [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    queryDuration: histogram('headroom_pool_query_duration_seconds', 'Query duration by target (primary/replica), query name or normalised statement, and outcome',
      ['target', 'name', 'outcome'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    errors: counter('headroom_pool_errors_total', 'Pool errors by kind: connection_lost, evicted, exhausted, acquire_timeout, unavailable, statement_timeout, closing',
      ['pool', 'kind']),
    leaks: counter('headroom_pool_leaks_total', 'Clients held longer than leakDetectionMs', ['pool']),
    reads: counter('headroom_pool_reads_total', 'Reads by where they ran and why: replica, or primary because no replica was healthy, fresh enough, or one failed',
      ['target', 'reason']),
    ejections: counter('headroom_pool_replica_ejections_total', 'Replicas taken out of the read rotation, by reason (error, lag)', ['pool', 'reason']),
    statements (pool) {
      prepared.set({ pool }, 0)
      return {
        size: (delta) => { prepared.inc({ pool }, delta) },
        evicted: () => { evictions.inc({ pool }) },
        reprepared: (reason) => { reprepares.inc({ pool, reason }) }
      }
    },
    track (source) {
      connections[kSources].add(source)
      return () => { connections[kSources].delete(source) }
    },
    trackReplica (source) {
      replicaUp[kSources].add(source)
      return () => { replicaUp[kSources].delete(source) }
    }
  }
}
