import { withSpan } from '@headroom/core/contracts'
import type { Span } from '@opentelemetry/api'
import pg from 'pg'
import { performance } from 'node:perf_hooks'
import { errorCode, isConnectionError } from './classify.js'
import type { QueryOptions, QueryText } from './db.js'
import { TransactionAborted } from './errors.js'
import { LSN_SQL } from './lsn.js'
import type { QueryNames } from './names.js'
import type { Target } from './target.js'
import { ACQUIRE_WAIT_MS, endQuery, poolTracer, startQuery } from './tracing.js'

export interface TransactionOptions {
  isolationLevel?: 'read committed' | 'repeatable read' | 'serializable'
  readOnly?: boolean
}

/** what a transaction callback gets: queries on the one client of the transaction */
export interface Transaction {
  query<R extends pg.QueryResultRow = pg.QueryResultRow> (query: QueryText, values?: unknown[], options?: QueryOptions): Promise<pg.QueryResult<R>>
  /** the raw client, for cursors or COPY; do not release it */
  readonly client: pg.PoolClient
}

const ISOLATION = new Set(['read committed', 'repeatable read', 'serializable'])

function beginSql (options: TransactionOptions | undefined): string {
  let sql = 'BEGIN'
  if (options?.isolationLevel !== undefined) {
    if (!ISOLATION.has(options.isolationLevel)) throw new TypeError(`transaction isolationLevel must be one of ${[...ISOLATION].join(', ')}`)
    sql += ` ISOLATION LEVEL ${options.isolationLevel.toUpperCase()}`
  }
  if (options?.readOnly === true) sql += ' READ ONLY'
  return sql
}

/**
 * BEGIN … COMMIT on `target`, ROLLBACK and release on any throw; with
 * `track`, the commit reports the WAL position the replicas must reach. A
 * `transaction` span is the parent of the spans of its queries (BEGIN
 * and COMMIT are not spans of their own: the transaction's span covers them).
 */
export function runTransaction<T> (target: Target, names: QueryNames, fn: (tx: Transaction) => Promise<T>, options: TransactionOptions | undefined, track: ((lsn: string | null) => void) | null): Promise<T> {
  return withSpan(poolTracer, 'transaction', {
    attributes: () => ({
      ...target.spanAttributes,
      'db.operation.name': 'transaction',
      ...(options?.isolationLevel !== undefined ? { 'headroom.pool.isolation_level': options.isolationLevel } : {}),
      ...(options?.readOnly === true ? { 'headroom.pool.read_only': true } : {})
    })
  }, (span) => transactionIn(target, names, span, fn, options, track))
}

async function transactionIn<T> (target: Target, names: QueryNames, span: Span, fn: (tx: Transaction) => Promise<T>, options: TransactionOptions | undefined, track: ((lsn: string | null) => void) | null): Promise<T> {
  const begin = beginSql(options)
  const started = performance.now()
  const client = await target.checkout()
  if (span.isRecording()) span.setAttribute(ACQUIRE_WAIT_MS, performance.now() - started)
  const tx: Transaction = {
    client,
    query: (query, values, opts) => {
      const name = names.of(query, opts)
      const querySpan = startQuery(name, query, target.spanAttributes)
      return target.timed(client, query, values, name).then((result) => {
        endQuery(querySpan)
        return result
      }, (err: unknown) => {
        endQuery(querySpan, err)
        throw target.mapQueryError(err, name)
      }) as Promise<pg.QueryResult<never>>
    }
  }
  let releaseError: unknown
  let inCallback = false
  try {
    await client.query(begin)
    inCallback = true
    const result = await fn(tx)
    inCallback = false
    let commit: pg.QueryResult
    if (track !== null) {
      // one round trip: COMMIT and the WAL position the replicas must reach
      const results = await client.query(`COMMIT; ${LSN_SQL}`) as unknown as pg.QueryResult[]
      commit = results[0]!
      track((results[1]?.rows[0] as { lsn?: string } | undefined)?.lsn ?? null)
    } else {
      commit = await client.query('COMMIT')
    }
    // COMMIT of an aborted transaction answers ROLLBACK, not an error: the callback
    // swallowed a failed statement, and the writes it thinks it made are gone
    if (commit.command === 'ROLLBACK') throw new TransactionAborted()
    if (span.isRecording()) span.setAttribute('headroom.pool.transaction.outcome', 'commit')
    return result
  } catch (err) {
    if (span.isRecording()) span.setAttribute('headroom.pool.transaction.outcome', 'rollback')
    if (inCallback && !(err instanceof pg.DatabaseError) && !errorCode(err)?.startsWith('HEADROOM_')) {
      // the app's own error (insufficient funds, a validation): roll back and hand it back as is,
      // not as a database outage; a connection that is really broken fails the ROLLBACK and is evicted
      await client.query('ROLLBACK').catch((rollbackError: unknown) => { releaseError = rollbackError })
      throw err
    }
    const cause = (err as { cause?: unknown }).cause ?? err
    if (isConnectionError(cause) && !errorCode(cause)?.startsWith('HEADROOM_')) {
      releaseError = cause
    } else {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => { releaseError = rollbackError })
    }
    throw target.mapQueryError(err, 'transaction')
  } finally {
    target.release(client, releaseError)
  }
}
