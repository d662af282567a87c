import pg from 'pg'
import { describe, errorCode, isConnectionError, QUERY_CANCELED } from './classify.js'
import { AcquireTimeout, Closing, PoolExhausted, QueryFailed, StatementTimeout, Unavailable, withRetryAfter, type QueryFailure } from './errors.js'
import type { TargetContext } from './target.js'

/** how pg reports its connect timeout (pg.Client's `connectionTimeoutMillis`): by message alone, no code */
const PG_CONNECT_TIMEOUT_MESSAGES = ['Connection terminated due to connection timeout', 'timeout expired']

/**
 * The errors of one pool, as its callers see them: the pool's own
 * (HEADROOM_POOL_*, 503 with Retry-After where retrying helps), each counted
 * in `headroom_pool_errors_total` by kind where it is made; the driver's
 * error stays as `cause`, for logs only.
 */
export class Failures {
  readonly #label: string
  readonly #ctx: TargetContext

  constructor (label: string, ctx: TargetContext) {
    this.#label = label
    this.#ctx = ctx
  }

  /** counts a failure of `kind` and gives it the Retry-After header */
  fail<E extends Error> (kind: string, err: E): E {
    this.#ctx.metrics.errors.inc({ pool: this.#label, kind })
    return withRetryAfter(err, this.#ctx.options.retryAfterSeconds)
  }

  closing (): Error {
    return this.fail('closing', new Closing())
  }

  exhausted (waiting: number, max: number): Error {
    return this.fail('exhausted', new PoolExhausted(this.#label, waiting, max))
  }

  acquireTimeout (): Error {
    return this.fail('acquire_timeout', new AcquireTimeout(this.#label, this.#ctx.options.acquireTimeoutMs))
  }

  /** a connect that failed after `elapsedMs` of the acquire budget, as the pool's own error */
  acquire (err: unknown, elapsedMs: number): Error {
    // ours already (the pool's deadline on the connect): counted where it was made
    if (errorCode(err)?.startsWith('HEADROOM_')) return err as Error
    const message = err instanceof Error ? err.message : ''
    // the connect timeout surfaces as pg's timeout message or as the socket's end, depending on timing
    if (PG_CONNECT_TIMEOUT_MESSAGES.includes(message) || elapsedMs >= this.#ctx.options.acquireTimeoutMs - 5) return this.acquireTimeout()
    return this.#unavailable(err)
  }

  /** a query's error: a statement timeout, the server's error wrapped, a lost connection as unavailable, anything else as is */
  query (err: unknown, name: string): unknown {
    const code = errorCode(err)
    if (code?.startsWith('HEADROOM_')) return err
    if (code === QUERY_CANCELED) {
      const e = this.fail('statement_timeout', new StatementTimeout(this.#ctx.options.statementTimeoutMs))
      e.cause = err
      ;(e as Error & { query?: string }).query = name
      return e
    }
    if (err instanceof pg.DatabaseError && !isConnectionError(err)) return queryFailed(err)
    if (isConnectionError(err)) return this.#unavailable(err)
    return err
  }

  connectionLost (err: Error): void {
    this.#ctx.metrics.errors.inc({ pool: this.#label, kind: 'connection_lost' })
    this.#ctx.log.warn({ pool: this.#label, reason: describe(err) }, 'PostgreSQL connection lost; the pool replaces it')
  }

  #unavailable (cause: unknown): Error {
    const e = this.fail('unavailable', new Unavailable(this.#label))
    e.cause = cause
    return e
  }
}

/** the server's error, wrapped so a client sees the code and not the server's message; what the app needs stays on it */
function queryFailed (err: pg.DatabaseError): QueryFailure {
  const e = new QueryFailed() as unknown as QueryFailure
  e.cause = err
  e.sqlState = err.code as string
  if (err.constraint !== undefined) e.constraint = err.constraint
  return e
}
