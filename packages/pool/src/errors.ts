import { createError } from '@fastify/error'

/** every wait in the pool fails with one of these 503s, never a hang */
export const PoolExhausted = createError<[string, number, number]>(
  'HEADROOM_POOL_EXHAUSTED',
  'PostgreSQL pool "%s" is exhausted: %d requests already wait for its %d connections',
  503
)

export const AcquireTimeout = createError<[string, number]>(
  'HEADROOM_POOL_ACQUIRE_TIMEOUT',
  'No connection of PostgreSQL pool "%s" became available within acquireTimeoutMs (%d ms)',
  503
)

// Messages reach clients through Fastify's error handler: the pool's label ("primary",
// "replica:0") and settings only. Hosts, ports, SQL and the server's messages stay on the
// error (`cause`, `query`, `sqlState`) for the logs.

/** the server refused or dropped the connection; `cause` is the driver's error */
export const Unavailable = createError<[string]>(
  'HEADROOM_POOL_UNAVAILABLE',
  'The database (%s) is temporarily unavailable',
  503
)

/** `query` is the query's label (its name, or the normalised statement), `cause` the server's error */
export const StatementTimeout = createError<[number]>(
  'HEADROOM_POOL_STATEMENT_TIMEOUT',
  'A query was canceled by the server: it ran past statement_timeout (%d ms)',
  503
)

/**
 * The server refused a statement (a constraint, a syntax error, a bad value):
 * `sqlState` is its SQLSTATE (e.g. '23505' for a unique violation),
 * `constraint` the constraint it names, if any, and `cause` the driver's error.
 */
export const QueryFailed = createError(
  'HEADROOM_POOL_QUERY_FAILED',
  'A database statement failed',
  500
)

/** what QueryFailed carries for the app and its logs */
export interface QueryFailure extends Error {
  code: 'HEADROOM_POOL_QUERY_FAILED'
  statusCode: 500
  sqlState: string
  constraint?: string
  cause: Error
}

export const TransactionAborted = createError(
  'HEADROOM_POOL_TRANSACTION_ABORTED',
  'The transaction was aborted by an earlier error the callback caught; COMMIT rolled it back',
  500
)

export const Closing = createError(
  'HEADROOM_POOL_CLOSING',
  'The PostgreSQL pool is closing: no new queries are accepted',
  503
)

export const InvalidToken = createError<[string]>(
  'HEADROOM_POOL_INVALID_TOKEN',
  'Invalid consistency token "%s": expected a PostgreSQL LSN such as "0/16B3748"',
  400
)

export const InvalidOption = createError<[string, string]>(
  'HEADROOM_POOL_INVALID_OPTION',
  '@headroom/pool option "%s" %s',
  500
)

type RetryableError = Error & { headers?: Record<string, string> }

/** Retry-After on the 503s: Fastify's default error handler copies `error.headers` onto the reply */
export function withRetryAfter<E extends Error> (err: E, seconds: number): E {
  (err as RetryableError).headers = { 'retry-after': String(seconds) }
  return err
}
