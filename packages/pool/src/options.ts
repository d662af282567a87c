import type { ClientConfig } from 'pg'
import { rejectUnknownOptions, type OptionNames } from '@headroom/core/contracts'
import { InvalidOption } from './errors.js'

/** A server to connect to: a connection string, or pg client options (ssl, password, …). */
export type ServerConfig = string | ClientConfig

export interface PoolOptions {
  /**
   * The primary: every write, every transaction and `fastify.db.query()`.
   * @default process.env.DATABASE_URL
   */
  primary?: ServerConfig
  /**
   * Streaming replicas for `read()`. Each gets its own pool of `replicaMin`–`replicaMax`.
   * @default []
   */
  replicas?: ServerConfig[]
  /** connections opened at startup and kept open. @default 5 */
  min?: number
  /** connections per pool at most. @default 25 */
  max?: number
  /** @default min */
  replicaMin?: number
  /** @default max */
  replicaMax?: number
  /**
   * How long a query may wait for a connection, time spent in the queue
   * included, before it fails with `HEADROOM_POOL_ACQUIRE_TIMEOUT` (503).
   * @default 5000
   */
  acquireTimeoutMs?: number
  /**
   * How many queries may wait for a connection of one pool; the next one
   * fails at once with `HEADROOM_POOL_EXHAUSTED` (503, Retry-After).
   * @default 100
   */
  maxWaiting?: number
  /** the Retry-After (seconds) of every 503 this plugin raises. @default 1 */
  retryAfterSeconds?: number
  /** server-side `statement_timeout`; 0 turns it off. @default 10000 */
  statementTimeoutMs?: number
  /** server-side `idle_in_transaction_session_timeout`; 0 turns it off. @default 10000 */
  idleInTransactionTimeoutMs?: number
  /** a connection above `min` idle for this long is closed. @default 10000 */
  idleTimeoutMs?: number
  /** a connection is replaced after this long; 0 turns it off. @default 1800000 (30 min) */
  maxLifetimeMs?: number
  /**
   * Each connection's lifetime is drawn from `[maxLifetimeMs × (1 − lifetimeJitter), maxLifetimeMs]`,
   * so connections opened together are not all replaced at once.
   * @default 0.2
   */
  lifetimeJitter?: number
  /** a replica lagging more than this is ejected until it catches up. @default 2000 */
  maxReplicaLagMs?: number
  /** how often each replica's health and lag are checked. @default 1000 */
  replicaCheckIntervalMs?: number
  /** a replica check slower than this counts as failed. @default 1000 */
  replicaCheckTimeoutMs?: number
  /** consecutive passing checks before an ejected replica takes reads again. @default 2 */
  replicaReadmitAfter?: number
  /** queries slower than this are logged (name and duration, never parameters); 0 turns it off. @default 1000 */
  slowQueryMs?: number
  /** a client held (connect()/transaction()) longer than this is logged with the stack that acquired it; 0 turns it off. @default 10000 */
  leakDetectionMs?: number
  /** distinct query names in the metrics; later ones are labelled `other`. @default 100 */
  maxQueryNames?: number
  /**
   * Where `request.db` keeps the consistency token in `request.session`
   * (anything with `get(key)`/`set(key, value)`, e.g. @fastify/session), so
   * read-your-writes holds across the requests of a session. `false` turns it off.
   * @default 'headroomPoolLsn'
   */
  sessionKey?: string | false
  /** `application_name` of every connection (visible in pg_stat_activity). @default 'headroom-pool' */
  applicationName?: string
  /** onClose waits this long for in-flight queries before ending the pools anyway. @default 10000 */
  closeTimeoutMs?: number
  /**
   * Whether `query()` and `read()` send named prepared statements when the
   * call does not say (`{ prepare }`). Statements inside `transaction()` are
   * never named (see the README).
   * @default false
   */
  prepare?: boolean
  /**
   * Named prepared statements kept per connection; past it the least
   * recently used one is deallocated on the server.
   * @default 100
   */
  statementCacheSize?: number
}

export const DEFAULT_MIN = 5
export const DEFAULT_MAX = 25
export const DEFAULT_ACQUIRE_TIMEOUT_MS = 5000
export const DEFAULT_MAX_WAITING = 100
export const DEFAULT_RETRY_AFTER_SECONDS = 1
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000
export const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000
export const DEFAULT_IDLE_TIMEOUT_MS = 10_000
export const DEFAULT_MAX_LIFETIME_MS = 30 * 60_000
export const DEFAULT_LIFETIME_JITTER = 0.2
export const DEFAULT_MAX_REPLICA_LAG_MS = 2000
export const DEFAULT_REPLICA_CHECK_INTERVAL_MS = 1000
export const DEFAULT_REPLICA_CHECK_TIMEOUT_MS = 1000
export const DEFAULT_REPLICA_READMIT_AFTER = 2
export const DEFAULT_SLOW_QUERY_MS = 1000
export const DEFAULT_LEAK_DETECTION_MS = 10_000
export const DEFAULT_MAX_QUERY_NAMES = 100
export const DEFAULT_SESSION_KEY = 'headroomPoolLsn'
export const DEFAULT_APPLICATION_NAME = 'headroom-pool'
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000
export const DEFAULT_STATEMENT_CACHE_SIZE = 100

export interface NormalizedOptions {
  primary: ClientConfig
  replicas: ClientConfig[]
  min: number
  max: number
  replicaMin: number
  replicaMax: number
  acquireTimeoutMs: number
  maxWaiting: number
  retryAfterSeconds: number
  statementTimeoutMs: number
  idleInTransactionTimeoutMs: number
  idleTimeoutMs: number
  maxLifetimeMs: number
  lifetimeJitter: number
  maxReplicaLagMs: number
  replicaCheckIntervalMs: number
  replicaCheckTimeoutMs: number
  replicaReadmitAfter: number
  slowQueryMs: number
  leakDetectionMs: number
  maxQueryNames: number
  sessionKey: string | false
  applicationName: string
  closeTimeoutMs: number
  prepare: boolean
  statementCacheSize: number
}

function integer (name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidOption(name, `must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

function server (name: string, value: unknown): ClientConfig {
  if (typeof value === 'string' && value.length > 0) return { connectionString: value }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return { ...(value as ClientConfig) }
  throw new InvalidOption(name, 'must be a connection string or pg client options')
}

const KNOWN: OptionNames<PoolOptions> = {
  primary: true,
  replicas: true,
  min: true,
  max: true,
  replicaMin: true,
  replicaMax: true,
  acquireTimeoutMs: true,
  maxWaiting: true,
  retryAfterSeconds: true,
  statementTimeoutMs: true,
  idleInTransactionTimeoutMs: true,
  idleTimeoutMs: true,
  maxLifetimeMs: true,
  lifetimeJitter: true,
  maxReplicaLagMs: true,
  replicaCheckIntervalMs: true,
  replicaCheckTimeoutMs: true,
  replicaReadmitAfter: true,
  slowQueryMs: true,
  leakDetectionMs: true,
  maxQueryNames: true,
  sessionKey: true,
  applicationName: true,
  closeTimeoutMs: true,
  prepare: true,
  statementCacheSize: true
}

/** @fastify/postgres's and pg-pool's names for our options, so a migration gets a useful message */
const RENAMED = {
  connectionString: 'the primary is `primary` (a connection string or pg client options)',
  connectionTimeoutMillis: 'the wait for a connection is `acquireTimeoutMs`',
  idleTimeoutMillis: 'use `idleTimeoutMs`',
  maxLifetimeSeconds: 'use `maxLifetimeMs` (milliseconds)',
  statement_timeout: 'use `statementTimeoutMs`'
}

export function normalizeOptions (opts: PoolOptions = {}): NormalizedOptions {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOption('options', 'must be an object')
  rejectUnknownOptions(opts, KNOWN, (name, reason) => new InvalidOption(name, reason), RENAMED)
  const primary = opts.primary ?? process.env.DATABASE_URL
  if (primary === undefined) throw new InvalidOption('primary', 'is required (or set DATABASE_URL)')
  if (opts.replicas !== undefined && !Array.isArray(opts.replicas)) {
    throw new InvalidOption('replicas', 'must be an array of connection strings or pg client options')
  }
  const min = integer('min', opts.min, DEFAULT_MIN, 0)
  const max = integer('max', opts.max, DEFAULT_MAX, 1)
  if (min > max) throw new InvalidOption('min', `(${min}) must not exceed max (${max})`)
  const replicaMax = integer('replicaMax', opts.replicaMax, max, 1)
  const replicaMin = integer('replicaMin', opts.replicaMin, Math.min(min, replicaMax), 0)
  if (replicaMin > replicaMax) throw new InvalidOption('replicaMin', `(${replicaMin}) must not exceed replicaMax (${replicaMax})`)
  const jitter = opts.lifetimeJitter ?? DEFAULT_LIFETIME_JITTER
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter < 1)) {
    throw new InvalidOption('lifetimeJitter', `must be a number in [0, 1), got ${JSON.stringify(jitter)}`)
  }
  const sessionKey = opts.sessionKey ?? DEFAULT_SESSION_KEY
  if (sessionKey !== false && (typeof sessionKey !== 'string' || sessionKey.length === 0)) {
    throw new InvalidOption('sessionKey', 'must be a non-empty string or false')
  }
  const applicationName = opts.applicationName ?? DEFAULT_APPLICATION_NAME
  if (typeof applicationName !== 'string') throw new InvalidOption('applicationName', 'must be a string')
  const prepare = opts.prepare ?? false
  if (typeof prepare !== 'boolean') throw new InvalidOption('prepare', `must be a boolean, got ${JSON.stringify(prepare)}`)
  return {
    primary: server('primary', primary),
    replicas: (opts.replicas ?? []).map((r, i) => server(`replicas[${i}]`, r)),
    min,
    max,
    replicaMin,
    replicaMax,
    acquireTimeoutMs: integer('acquireTimeoutMs', opts.acquireTimeoutMs, DEFAULT_ACQUIRE_TIMEOUT_MS, 1),
    maxWaiting: integer('maxWaiting', opts.maxWaiting, DEFAULT_MAX_WAITING, 0),
    retryAfterSeconds: integer('retryAfterSeconds', opts.retryAfterSeconds, DEFAULT_RETRY_AFTER_SECONDS, 0),
    statementTimeoutMs: integer('statementTimeoutMs', opts.statementTimeoutMs, DEFAULT_STATEMENT_TIMEOUT_MS, 0),
    idleInTransactionTimeoutMs: integer('idleInTransactionTimeoutMs', opts.idleInTransactionTimeoutMs, DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS, 0),
    idleTimeoutMs: integer('idleTimeoutMs', opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 1),
    maxLifetimeMs: integer('maxLifetimeMs', opts.maxLifetimeMs, DEFAULT_MAX_LIFETIME_MS, 0),
    lifetimeJitter: jitter,
    maxReplicaLagMs: integer('maxReplicaLagMs', opts.maxReplicaLagMs, DEFAULT_MAX_REPLICA_LAG_MS, 1),
    replicaCheckIntervalMs: integer('replicaCheckIntervalMs', opts.replicaCheckIntervalMs, DEFAULT_REPLICA_CHECK_INTERVAL_MS, 10),
    replicaCheckTimeoutMs: integer('replicaCheckTimeoutMs', opts.replicaCheckTimeoutMs, DEFAULT_REPLICA_CHECK_TIMEOUT_MS, 1),
    replicaReadmitAfter: integer('replicaReadmitAfter', opts.replicaReadmitAfter, DEFAULT_REPLICA_READMIT_AFTER, 1),
    slowQueryMs: integer('slowQueryMs', opts.slowQueryMs, DEFAULT_SLOW_QUERY_MS, 0),
    leakDetectionMs: integer('leakDetectionMs', opts.leakDetectionMs, DEFAULT_LEAK_DETECTION_MS, 0),
    maxQueryNames: integer('maxQueryNames', opts.maxQueryNames, DEFAULT_MAX_QUERY_NAMES, 1),
    sessionKey,
    applicationName,
    closeTimeoutMs: integer('closeTimeoutMs', opts.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 0),
    prepare,
    statementCacheSize: integer('statementCacheSize', opts.statementCacheSize, DEFAULT_STATEMENT_CACHE_SIZE, 1)
  }
}
