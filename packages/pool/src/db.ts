import type pg from 'pg'
import { describe, errorCode, isConnectionError, SERIALIZATION_FAILURE } from './classify.js'
import { type ConsistencyToken, LSN_SQL, parseLsn, parseToken } from './lsn.js'
import { REPLAY_LSN_SQL, Replica } from './replica.js'
import { DbSession, type TokenStore } from './scope.js'
import type { Target, TargetContext } from './target.js'
import { runTransaction, type Transaction, type TransactionOptions } from './transaction.js'

export { DbSession, type TokenStore, type Transaction, type TransactionOptions }

export type QueryText = string | pg.QueryConfig

export interface QueryOptions {
  /** the label of this query in the metrics and the slow-query log; default: the normalised statement */
  name?: string
  /**
   * Treat the query as a write for read-your-writes even though it reports
   * `SELECT` (e.g. `SELECT my_function_that_writes()`). Statements other than
   * SELECT/SHOW/EXPLAIN/FETCH count as writes without it.
   */
  write?: boolean
  /**
   * Send it as a named prepared statement (named by a hash of its text),
   * kept on each connection up to `statementCacheSize`: parsed and planned
   * once per connection rather than on every call. For statements an app
   * repeats with parameters, not for SQL built per call. Default: the
   * plugin's `prepare` option. Ignored inside `transaction()`, and when the
   * query config carries its own `name` (pg's own prepared statement).
   */
  prepare?: boolean
}

export interface ReadOptions extends QueryOptions {
  /** only read from a replica that has replayed this token's write (from `consistencyToken`) */
  after?: ConsistencyToken | null
}

const READ_COMMANDS = new Set(['SELECT', 'SHOW', 'EXPLAIN', 'FETCH', 'MOVE', 'DECLARE'])
const PRIMARY_LSN_SQL = 'SELECT pg_current_wal_lsn()::text AS lsn'

function isWrite (result: pg.QueryResult | pg.QueryResult[], options: QueryOptions | undefined): boolean {
  if (options?.write === true) return true
  const results = Array.isArray(result) ? result : [result]
  return results.some((r) => r.command !== null && !READ_COMMANDS.has(r.command))
}

/**
 * `fastify.db`: the primary for queries and transactions, replicas for
 * `read()`, and the raw pools. It remembers nothing between calls; for
 * read-your-writes use `request.db` or `fastify.db.session()`.
 */
export class Db {
  readonly primaryTarget: Target
  readonly replicaSet: Replica[]
  readonly #ctx: TargetContext
  #next = 0
  readonly #prepareByDefault: boolean

  constructor (ctx: TargetContext, primary: Target) {
    this.#ctx = ctx
    this.primaryTarget = primary
    this.replicaSet = ctx.options.replicas.map((config, i) => new Replica(i, config, ctx))
    this.#prepareByDefault = ctx.options.prepare
  }

  #prepared (query: QueryText, options: QueryOptions | undefined): boolean {
    return (options?.prepare ?? this.#prepareByDefault) && (typeof query === 'string' || query.name === undefined)
  }

  /** the raw pg.Pool of the primary and of each replica, for advanced use (bypasses the bounded queue and metrics) */
  get pools (): { primary: pg.Pool, replicas: pg.Pool[] } {
    return { primary: this.primaryTarget.pool, replicas: this.replicaSet.map((r) => r.target.pool) }
  }

  /** replicas and whether they take reads */
  replicaStatus (): Array<{ name: string, up: boolean, lagMs: number | null }> {
    return this.replicaSet.map((r) => ({ name: r.label, up: r.up, lagMs: r.lagMs }))
  }

  /** a query on the primary */
  query<R extends pg.QueryResultRow = pg.QueryResultRow> (query: QueryText, values?: unknown[], options?: QueryOptions): Promise<pg.QueryResult<R>> {
    return this.primaryQuery(query, values, options, null) as Promise<pg.QueryResult<R>>
  }

  /**
   * A read: on a healthy replica fresh enough for `options.after`, else on
   * the primary (never an error because replicas are down or behind).
   */
  async read<R extends pg.QueryResultRow = pg.QueryResultRow> (query: QueryText, values?: unknown[], options?: ReadOptions): Promise<pg.QueryResult<R>> {
    const after = options?.after
    return await this.routeRead(query, values, options, after == null ? null : parseToken(after)) as pg.QueryResult<R>
  }

  /** BEGIN … COMMIT on the primary; ROLLBACK and release on any throw */
  transaction<T> (fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return this.runTransaction(fn, options, null)
  }

  /**
   * A primary client through the bounded queue; call `client.release()`.
   * Held longer than leakDetectionMs, it is logged with this call's stack.
   */
  async connect (): Promise<pg.PoolClient> {
    const target = this.primaryTarget
    const client = await target.checkout()
    const poolRelease = client.release
    let released = false
    client.release = (err?: Error | boolean) => {
      if (released) return poolRelease(err)
      released = true
      client.release = poolRelease
      // like pg-pool: release(err) or release(true) destroys the connection
      target.release(client, undefined, err !== undefined && err !== false)
    }
    return client
  }

  /** a read-your-writes scope outside HTTP requests (jobs, scripts): like `request.db` */
  session (token?: ConsistencyToken | null): DbSession {
    return new DbSession(this, token == null ? null : parseToken(token), null, false)
  }

  /** @internal */
  async primaryQuery (query: QueryText, values: unknown[] | undefined, options: QueryOptions | undefined, track: ((lsn: string | null) => void) | null): Promise<pg.QueryResult> {
    const target = this.primaryTarget
    const name = this.#ctx.names.of(query, options)
    const prepare = this.#prepared(query, options)
    if (track === null) return target.query(query, values, name, prepare)
    return target.use(name, async (client) => {
      const result = await target.timed(client, query, values, name, prepare)
      if (track !== null && isWrite(result, options)) {
        const { rows } = await client.query<{ lsn: string | null }>(LSN_SQL)
        track(rows[0]?.lsn ?? null)
      }
      return result
    }, query)
  }

  #pickReplica (minLsn: bigint | null): { replica: Replica, fresh: boolean } | null {
    const replicas = this.replicaSet
    const n = replicas.length
    let candidate: Replica | null = null
    for (let i = 0; i < n; i++) {
      const replica = replicas[(this.#next + i) % n]!
      if (!replica.up) continue
      if (replica.freshFor(minLsn)) {
        this.#next = (this.#next + i + 1) % n
        return { replica, fresh: true }
      }
      candidate ??= replica
    }
    if (candidate === null) return null
    this.#next = (candidate.index + 1) % n
    return { replica: candidate, fresh: false }
  }

  /** @internal */
  async routeRead (query: QueryText, values: unknown[] | undefined, options: QueryOptions | undefined, minLsn: bigint | null): Promise<pg.QueryResult> {
    const { metrics } = this.#ctx
    const picked = this.#pickReplica(minLsn)
    if (picked === null) {
      metrics.reads.inc({ target: 'primary', reason: 'no_replica' })
      return this.primaryQuery(query, values, options, null)
    }
    const { replica, fresh } = picked
    const target = replica.target
    const name = this.#ctx.names.of(query, options)
    const prepare = this.#prepared(query, options)
    let result: pg.QueryResult | null
    try {
      result = fresh
        ? await target.query(query, values, name, prepare)
        : await target.use(name, async (client) => {
          // the last check is older than the write: ask this replica where its replay is now
          const { rows } = await client.query<{ standby: boolean, lsn: string | null }>(REPLAY_LSN_SQL)
          replica.observe(rows[0]!.standby, rows[0]!.lsn)
          if (!replica.freshFor(minLsn)) return null
          return target.timed(client, query, values, name, prepare)
        }, query)
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err
      const code = errorCode(err)
      if (code === 'HEADROOM_POOL_UNAVAILABLE' || (isConnectionError(cause) && !code?.startsWith('HEADROOM_'))) {
        replica.eject('error', describe(cause))
      } else if (code !== 'HEADROOM_POOL_EXHAUSTED' && code !== 'HEADROOM_POOL_ACQUIRE_TIMEOUT' && errorCode(cause) !== SERIALIZATION_FAILURE) {
        throw err
      }
      // a read is safe to repeat: the primary answers it rather than the caller seeing the replica's trouble
      metrics.reads.inc({ target: 'primary', reason: 'replica_error' })
      return this.primaryQuery(query, values, options, null)
    }
    if (result === null) {
      metrics.reads.inc({ target: 'primary', reason: 'stale' })
      return this.primaryQuery(query, values, options, null)
    }
    metrics.reads.inc({ target: 'replica', reason: 'replica' })
    return result
  }

  /** @internal */
  runTransaction<T> (fn: (tx: Transaction) => Promise<T>, options: TransactionOptions | undefined, track: ((lsn: string | null) => void) | null): Promise<T> {
    return runTransaction(this.primaryTarget, this.#ctx.names, fn, options, track)
  }

  #monitor: NodeJS.Timeout | undefined

  async #primaryLsn (): Promise<bigint | null> {
    try {
      const { rows } = await this.primaryTarget.use('replica lag check', (c) => c.query<{ lsn: string }>(PRIMARY_LSN_SQL))
      return parseLsn(rows[0]?.lsn)
    } catch {
      return null
    }
  }

  async #checkReplicas (): Promise<void> {
    const lsn = await this.#primaryLsn()
    await Promise.all(this.replicaSet.map((r) => r.check(lsn)))
  }

  async start (): Promise<void> {
    await Promise.all([this.primaryTarget.prefill(), ...this.replicaSet.map((r) => r.target.prefill())])
    if (this.replicaSet.length === 0) return
    await this.#checkReplicas()
    let running = false
    this.#monitor = setInterval(() => {
      if (running) return
      running = true
      this.#checkReplicas().finally(() => { running = false }).catch(() => {})
    }, this.#ctx.options.replicaCheckIntervalMs)
    this.#monitor.unref()
  }

  async close (timeoutMs: number): Promise<void> {
    clearInterval(this.#monitor)
    await Promise.all([this.primaryTarget.close(timeoutMs), ...this.replicaSet.map((r) => r.target.close(timeoutMs))])
  }
}
