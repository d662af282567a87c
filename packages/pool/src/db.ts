import type { Span } from '@opentelemetry/api'
import pg from 'pg'
import { describe, errorCode, isConnectionError, SERIALIZATION_FAILURE } from './classify.js'
import { TransactionAborted } from './errors.js'
import { type ConsistencyToken, formatLsn, parseLsn, parseToken } from './lsn.js'
import { REPLAY_LSN_SQL, Replica } from './replica.js'
import type { Target, TargetContext } from './target.js'
import { ACQUIRE_WAIT_MS, endQuery, poolTracer, startQuery, textOf } from './tracing.js'
import { withSpan } from '@headroom/core/contracts'
import { performance } from 'node:perf_hooks'

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

const READ_COMMANDS = new Set(['SELECT', 'SHOW', 'EXPLAIN', 'FETCH', 'MOVE', 'DECLARE'])
const LSN_SQL = 'SELECT pg_current_wal_insert_lsn()::text AS lsn'
const PRIMARY_LSN_SQL = 'SELECT pg_current_wal_lsn()::text AS lsn'
const ISOLATION = new Set(['read committed', 'repeatable read', 'serializable'])

function isWrite (result: pg.QueryResult | pg.QueryResult[], options: QueryOptions | undefined): boolean {
  if (options?.write === true) return true
  const results = Array.isArray(result) ? result : [result]
  return results.some((r) => r.command !== null && !READ_COMMANDS.has(r.command))
}

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
 * `fastify.db`: the primary for queries and transactions, replicas for
 * `read()`, and the raw pools. It remembers nothing between calls; for
 * read-your-writes use `request.db` or `fastify.db.session()`.
 */
export class Db {
  readonly primaryTarget: Target
  readonly replicaSet: Replica[]
  private next = 0
  private readonly prepareByDefault: boolean

  constructor (private readonly ctx: TargetContext, primary: Target) {
    this.primaryTarget = primary
    this.replicaSet = ctx.options.replicas.map((config, i) => new Replica(i, config, ctx))
    this.prepareByDefault = ctx.options.prepare
  }

  private prepared (query: QueryText, options: QueryOptions | undefined): boolean {
    return (options?.prepare ?? this.prepareByDefault) && (typeof query === 'string' || query.name === undefined)
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
    const name = this.ctx.names.label(textOf(query), options?.name ?? (typeof query === 'string' ? undefined : query.name))
    const prepare = this.prepared(query, options)
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

  private pickReplica (minLsn: bigint | null): { replica: Replica, fresh: boolean } | null {
    const replicas = this.replicaSet
    const n = replicas.length
    let candidate: Replica | null = null
    for (let i = 0; i < n; i++) {
      const replica = replicas[(this.next + i) % n]!
      if (!replica.up) continue
      if (replica.freshFor(minLsn)) {
        this.next = (this.next + i + 1) % n
        return { replica, fresh: true }
      }
      candidate ??= replica
    }
    if (candidate === null) return null
    this.next = (candidate.index + 1) % n
    return { replica: candidate, fresh: false }
  }

  /** @internal */
  async routeRead (query: QueryText, values: unknown[] | undefined, options: QueryOptions | undefined, minLsn: bigint | null): Promise<pg.QueryResult> {
    const { metrics } = this.ctx
    const picked = this.pickReplica(minLsn)
    if (picked === null) {
      metrics.reads.inc({ target: 'primary', reason: 'no_replica' })
      return this.primaryQuery(query, values, options, null)
    }
    const { replica, fresh } = picked
    const target = replica.target
    const name = this.ctx.names.label(textOf(query), options?.name ?? (typeof query === 'string' ? undefined : query.name))
    const prepare = this.prepared(query, options)
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

  /**
   * @internal
   * A `transaction` span is the parent of the spans of its queries (BEGIN
   * and COMMIT are not spans of their own: the transaction's span covers them).
   */
  runTransaction<T> (fn: (tx: Transaction) => Promise<T>, options: TransactionOptions | undefined, track: ((lsn: string | null) => void) | null): Promise<T> {
    const target = this.primaryTarget
    return withSpan(poolTracer, 'transaction', {
      attributes: () => ({
        ...target.spanAttributes,
        'db.operation.name': 'transaction',
        ...(options?.isolationLevel !== undefined ? { 'headroom.pool.isolation_level': options.isolationLevel } : {}),
        ...(options?.readOnly === true ? { 'headroom.pool.read_only': true } : {})
      })
    }, (span) => this.transactionIn(span, fn, options, track))
  }

  private async transactionIn<T> (span: Span, fn: (tx: Transaction) => Promise<T>, options: TransactionOptions | undefined, track: ((lsn: string | null) => void) | null): Promise<T> {
    const begin = beginSql(options)
    const target = this.primaryTarget
    const started = performance.now()
    const client = await target.checkout()
    if (span.isRecording()) span.setAttribute(ACQUIRE_WAIT_MS, performance.now() - started)
    const names = this.ctx.names
    const tx: Transaction = {
      client,
      query: (query, values, opts) => {
        const name = names.label(textOf(query), opts?.name ?? (typeof query === 'string' ? undefined : query.name))
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

  private monitor: NodeJS.Timeout | undefined

  private async primaryLsn (): Promise<bigint | null> {
    try {
      const { rows } = await this.primaryTarget.use('replica lag check', (c) => c.query<{ lsn: string }>(PRIMARY_LSN_SQL))
      return parseLsn(rows[0]?.lsn)
    } catch {
      return null
    }
  }

  private async checkReplicas (): Promise<void> {
    const lsn = await this.primaryLsn()
    await Promise.all(this.replicaSet.map((r) => r.check(lsn)))
  }

  async start (): Promise<void> {
    await Promise.all([this.primaryTarget.prefill(), ...this.replicaSet.map((r) => r.target.prefill())])
    if (this.replicaSet.length === 0) return
    await this.checkReplicas()
    let running = false
    this.monitor = setInterval(() => {
      if (running) return
      running = true
      this.checkReplicas().finally(() => { running = false }).catch(() => {})
    }, this.ctx.options.replicaCheckIntervalMs)
    this.monitor.unref()
  }

  async close (timeoutMs: number): Promise<void> {
    clearInterval(this.monitor)
    await Promise.all([this.primaryTarget.close(timeoutMs), ...this.replicaSet.map((r) => r.target.close(timeoutMs))])
  }
}

/** where a session plugin keeps the token between requests: `get(key)`/`set(key, value)`, as @fastify/session has */
export interface TokenStore {
  get (key: string): unknown
  set (key: string, value: unknown): void
}

/**
 * Read-your-writes scope: `request.db` (one per request) or
 * `fastify.db.session(token)`. It remembers the WAL position of its last
 * write; its reads go only to replicas that have replayed it. Carry
 * `consistencyToken` to the next request (a session, a cookie, a header) and
 * pass it to `after()`, or let `request.db` keep it in `request.session`.
 */
export class DbSession {
  private loaded: boolean

  constructor (private readonly db: Db, private lsn: bigint | null, private readonly store: TokenStore | null, private readonly key: string | false) {
    this.loaded = store === null || key === false
  }

  /** the WAL position this scope's reads must see, as a string to store; undefined before any write */
  get consistencyToken (): ConsistencyToken | undefined {
    const lsn = this.required()
    return lsn === null ? undefined : formatLsn(lsn)
  }

  /** reads from now on see at least the write behind `token` (from an earlier request); a malformed token is a 400 */
  after (token: ConsistencyToken | null | undefined): this {
    if (token != null) this.raise(parseToken(token))
    return this
  }

  private required (): bigint | null {
    if (!this.loaded) {
      this.loaded = true
      // a token kept in the session by an earlier request; a malformed one is ignored, not fatal
      const stored = parseLsn(this.store!.get(this.key as string))
      if (stored !== null && (this.lsn === null || stored > this.lsn)) this.lsn = stored
    }
    return this.lsn
  }

  private raise (lsn: bigint): void {
    const current = this.required()
    if (current !== null && current >= lsn) return
    this.lsn = lsn
    if (this.store !== null && this.key !== false) this.store.set(this.key, formatLsn(lsn))
  }

  private readonly track = (text: string | null): void => {
    const lsn = parseLsn(text)
    if (lsn !== null) this.raise(lsn)
  }

  /** a query on the primary; a write moves this scope's consistency token forward */
  query<R extends pg.QueryResultRow = pg.QueryResultRow> (query: QueryText, values?: unknown[], options?: QueryOptions): Promise<pg.QueryResult<R>> {
    return this.db.primaryQuery(query, values, options, this.track) as Promise<pg.QueryResult<R>>
  }

  /** a read that sees this scope's writes: a replica that has replayed them, else the primary */
  async read<R extends pg.QueryResultRow = pg.QueryResultRow> (query: QueryText, values?: unknown[], options?: ReadOptions): Promise<pg.QueryResult<R>> {
    if (options?.after != null) this.after(options.after)
    return await this.db.routeRead(query, values, options, this.required()) as pg.QueryResult<R>
  }

  /** a transaction on the primary; its commit moves the consistency token forward */
  transaction<T> (fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return this.db.runTransaction(fn, options, this.track)
  }
}
