import createError from '@fastify/error'

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

export const Unavailable = createError<[string, string]>(
  'HEADROOM_POOL_UNAVAILABLE',
  'PostgreSQL "%s" is unavailable: %s',
  503
)

export const StatementTimeout = createError<[string, number]>(
  'HEADROOM_POOL_STATEMENT_TIMEOUT',
  'Query "%s" was canceled by the server: it ran past statement_timeout (%d ms)',
  503
)

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
