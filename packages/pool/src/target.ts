import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'
import { describe, errorCode, isConnectionError, QUERY_CANCELED } from './classify.js'
import { AcquireTimeout, Closing, PoolExhausted, QueryFailed, StatementTimeout, Unavailable, withRetryAfter, type QueryFailure } from './errors.js'
import type { Observer } from './histogram.js'
import type { Metrics, PoolStats } from './metrics.js'
import type { QueryNames } from './names.js'
import type { NormalizedOptions } from './options.js'
import { Statements } from './statements.js'
import { ACQUIRE_WAIT_MS, endQuery, poolAttributes, startQuery } from './tracing.js'
import type { Attributes, Span } from '@opentelemetry/api'

export interface TargetContext {
  options: NormalizedOptions
  log: FastifyBaseLogger
  metrics: Metrics
  names: QueryNames
}

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
  /** performance.now() past which it fails */
  deadline: number
}

interface Held {
  timer: NodeJS.Timeout | undefined
}

const ACQUIRE_TIMEOUT_MESSAGES = ['timeout exceeded when trying to connect', 'Connection terminated due to connection timeout', 'timeout expired']

/**
 * One server: a pg.Pool behind a bounded, deadline-aware wait queue.
 *
 * pg-pool's own queue (`_pendingQueue`) has no bound, and its
 * `connectionTimeoutMillis` restarts when a queued request moves on to open a
 * connection. So at most `max` requests at a time get past this gate to
 * `pool.connect()` (which then never queues them); up to `maxWaiting` wait
 * here for a permit; everyone else fails at once. A request that waited gets
 * only what is left of `acquireTimeoutMs` for the connect. Opening a
 * connection is bounded by the client's own connect timeout.
 */
export class Target implements PoolStats {
  readonly pool: pg.Pool
  private permits: number
  private readonly waiters: Waiter[] = []
  private readonly held = new Map<pg.PoolClient, Held>()
  private active = 0
  private onIdle: (() => void) | null = null
  private closing = false
  private readonly acquireWait
  private readonly durations = new Map<string, Observer>()
  /** what every span of this pool carries, built once */
  readonly spanAttributes: Attributes
  /** named prepared statements of this pool's connections, `statementCacheSize` each */
  readonly statements: Statements

  constructor (readonly label: string, readonly kind: 'primary' | 'replica', config: pg.ClientConfig, size: { min: number, max: number }, private readonly ctx: TargetContext) {
    const o = ctx.options
    this.permits = size.max
    this.acquireWait = ctx.metrics.acquireWait.labels(label)
    this.spanAttributes = poolAttributes(label, kind, config)
    this.statements = new Statements(o.statementCacheSize, ctx.metrics.statements(label))
    const lifetimeMs = o.maxLifetimeMs
    // pg-pool's connectionTimeoutMillis arms a timer on every connect() and
    // reaches the client too; the gate keeps pg-pool from queueing, so only
    // opening a connection needs a timeout: pg.Client's own, set here alone
    const connectTimeoutMs = o.acquireTimeoutMs
    class BoundedClient extends pg.Client {
      constructor (clientConfig?: string | pg.ClientConfig) {
        super({ ...(typeof clientConfig === 'string' ? { connectionString: clientConfig } : clientConfig), connectionTimeoutMillis: connectTimeoutMs })
      }
    }
    const pool: pg.Pool = new pg.Pool({
      keepAlive: true,
      application_name: o.applicationName,
      ...config,
      // server-side, so the backend stops working too (a client-side timeout leaves it running, node-postgres#1954)
      ...(o.statementTimeoutMs > 0 ? { statement_timeout: o.statementTimeoutMs } : {}),
      ...(o.idleInTransactionTimeoutMs > 0 ? { idle_in_transaction_session_timeout: o.idleInTransactionTimeoutMs } : {}),
      min: size.min,
      max: size.max,
      idleTimeoutMillis: o.idleTimeoutMs,
      connectionTimeoutMillis: 0,
      Client: BoundedClient,
      onConnect: (client) => {
        // pg emits twice for one loss (the server's FATAL message, then the socket's end): count it once
        let lost = false
        client.on('error', (err) => {
          if (lost) return
          lost = true
          this.connectionLost(err)
        })
        // pg-pool reads maxLifetimeSeconds once per new client, right after this hook:
        // setting it here gives each connection its own jittered lifetime
        if (lifetimeMs > 0) pool.options.maxLifetimeSeconds = lifetimeMs * (1 - o.lifetimeJitter * Math.random()) / 1000
      }
    })
    // the client listener above already logged and counted it; without a listener here pg-pool's emit would crash the process
    pool.on('error', () => {})
    // pg-pool's min only stops idle clients from being closed; it never reopens
    // them. Top the pool up to min after a lost or expired connection so the
    // next burst does not pay for connects.
    pool.on('remove', () => { if (!this.closing) this.topUp() })
    this.pool = pool
  }

  private toppingUp = false

  private topUp (): void {
    if (this.toppingUp) return
    this.toppingUp = true
    // pool.connect() hands out idle clients before it opens new ones: ask for
    // the idle ones too, so `missing` new connections get opened
    setImmediate(() => {
      const missing = (this.pool.options.min ?? 0) - this.pool.totalCount
      const n = missing > 0 ? missing + this.pool.idleCount : 0
      Promise.allSettled(Array.from({ length: n }, () => this.pool.connect()))
        .then((clients) => { for (const c of clients) if (c.status === 'fulfilled') c.value.release() })
        .finally(() => {
          this.toppingUp = false
          if (!this.closing && this.pool.totalCount < (this.pool.options.min ?? 0) && n > 0 && missing > 0) this.topUpLater()
        })
        .catch(() => {})
    }).unref()
  }

  private topUpLater (): void {
    // something removed clients while we were opening some; or the server refused them: try again in a second, not in a tight loop
    setTimeout(() => { if (!this.closing) this.topUp() }, 1000).unref()
  }

  stats (): { total: number, idle: number, waiting: number } {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.waiters.length + this.pool.waitingCount }
  }

  get waiting (): number {
    return this.waiters.length
  }

  private connectionLost (err: Error): void {
    this.ctx.metrics.errors.inc({ pool: this.label, kind: 'connection_lost' })
    this.ctx.log.warn({ pool: this.label, reason: describe(err) }, 'PostgreSQL connection lost; the pool replaces it')
  }

  private fail<E extends Error> (kind: string, err: E): E {
    this.ctx.metrics.errors.inc({ pool: this.label, kind })
    return withRetryAfter(err, this.ctx.options.retryAfterSeconds)
  }

  /** opens `min` connections now rather than on the first requests */
  async prefill (): Promise<void> {
    const n = this.pool.options.min ?? 0
    const clients = await Promise.allSettled(Array.from({ length: n }, () => this.pool.connect()))
    let failed: unknown
    for (const c of clients) {
      if (c.status === 'fulfilled') c.value.release()
      else failed = c.reason
    }
    if (failed !== undefined) {
      this.ctx.log.warn({ pool: this.label, reason: describe(failed) }, 'PostgreSQL pool could not open its minimum connections; it keeps trying on demand')
    }
  }

  private waitTimer: NodeJS.Timeout | null = null

  private waitForPermit (): Promise<void> {
    const { maxWaiting, acquireTimeoutMs } = this.ctx.options
    if (this.waiters.length >= maxWaiting) {
      return Promise.reject(this.fail('exhausted', new PoolExhausted(this.label, this.waiters.length, this.pool.options.max ?? 0)))
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject, deadline: performance.now() + acquireTimeoutMs })
      if (this.waitTimer === null) this.armWaitTimer(acquireTimeoutMs)
    })
  }

  // Every waiter has the same timeout, so deadlines rise along the FIFO queue:
  // one timer, set for the oldest waiter, serves them all (a timer per waiter
  // costs about 0.4 µs on the hot path).
  //
  // Busy is not down: after a blocked event loop timers run before sockets
  // are read, so a connection released during the stall (its query's result
  // waiting in the socket) would not yet be back. The expiry waits for the
  // loop's next I/O pass (setImmediate runs after it): releases come first.
  private armWaitTimer (ms: number): void {
    this.waitTimer = setTimeout(() => { setImmediate(() => this.expireWaiters()) }, Math.max(1, ms))
    // the waiters' own promises keep whatever awaits them alive; this timer must not keep the process up
    this.waitTimer.unref()
  }

  private expireWaiters (): void {
    this.waitTimer = null
    // timers have millisecond granularity: a waiter within 1 ms of its deadline is due
    const now = performance.now() + 1
    const { acquireTimeoutMs } = this.ctx.options
    while (this.waiters.length > 0 && this.waiters[0]!.deadline <= now) {
      this.waiters.shift()!.reject(this.fail('acquire_timeout', new AcquireTimeout(this.label, acquireTimeoutMs)))
    }
    const head = this.waiters[0]
    if (head !== undefined) this.armWaitTimer(head.deadline - performance.now())
  }

  private releasePermit (): void {
    const next = this.waiters.shift()
    if (next !== undefined) {
      next.resolve()
    } else {
      this.permits++
    }
  }

  /** a connection through the gate; every path out of here is bounded by acquireTimeoutMs */
  async acquire (): Promise<pg.PoolClient> {
    if (this.closing) throw this.fail('closing', new Closing())
    const started = performance.now()
    let waited = false
    if (this.permits > 0) {
      this.permits--
    } else {
      await this.waitForPermit()
      waited = true
    }
    let client: pg.PoolClient
    try {
      client = await new Promise<pg.PoolClient>((resolve, reject) => {
        this.connectBounded(started, waited, (err, c) => { if (c !== undefined) resolve(c); else reject(err) })
      })
    } catch (err) {
      this.releasePermit()
      throw this.acquireError(err, started)
    }
    this.acquireWait.observe((performance.now() - started) / 1000)
    return client
  }

  /**
   * pool.connect() within what is left of acquireTimeoutMs. An idle client is
   * handed over at once, and a new connection is bounded by the client's
   * connect timeout; a deadline of our own is armed only when neither holds
   * (the wait already used part of the budget, or the raw pool's own users
   * hold every connection and pg-pool would queue this caller).
   */
  private connectBounded (started: number, waited: boolean, cb: (err: unknown, client?: pg.PoolClient) => void): void {
    const pool = this.pool
    if (pool.idleCount > 0 || (!waited && pool.totalCount < (pool.options.max ?? 0))) {
      pool.connect((err, client) => { cb(err, err ? undefined : client) })
      return
    }
    this.connectWithin(this.ctx.options.acquireTimeoutMs - (performance.now() - started)).then((c) => cb(undefined, c), (e: unknown) => cb(e))
  }

  private connectWithin (ms: number): Promise<pg.PoolClient> {
    return new Promise((resolve, reject) => {
      let late = false
      const timer = setTimeout(() => {
        late = true
        reject(new Error(ACQUIRE_TIMEOUT_MESSAGES[0]))
      }, Math.max(1, ms))
      this.pool.connect().then((client) => {
        clearTimeout(timer)
        if (late) client.release()
        else resolve(client)
      }, (err: unknown) => {
        clearTimeout(timer)
        if (!late) reject(err)
      })
    })
  }

  private acquireError (err: unknown, started: number): Error {
    if (errorCode(err)?.startsWith('HEADROOM_')) return err as Error
    const message = err instanceof Error ? err.message : ''
    // the connect timeout surfaces as 'timeout expired' or as the socket's end, depending on timing
    if (ACQUIRE_TIMEOUT_MESSAGES.includes(message) || performance.now() - started >= this.ctx.options.acquireTimeoutMs - 5) {
      return this.fail('acquire_timeout', new AcquireTimeout(this.label, this.ctx.options.acquireTimeoutMs))
    }
    const e = this.fail('unavailable', new Unavailable(this.label))
    e.cause = err
    return e
  }

  /** gives the client back: evicted on a connection-class error, kept on any other */
  release (client: pg.PoolClient, err?: unknown, destroy = false): void {
    const held = this.held.get(client)
    if (held !== undefined) {
      clearTimeout(held.timer)
      this.held.delete(client)
      this.done()
    }
    const evict = destroy || (err !== undefined && isConnectionError(err))
    if (evict) this.ctx.metrics.errors.inc({ pool: this.label, kind: 'evicted' })
    client.release(evict ? (err instanceof Error ? err : new Error(describe(err))) : undefined)
    this.releasePermit()
  }

  /**
   * One query on a connection of this pool: what `use()` + `timed()` do, on
   * pg's callback APIs. The promise APIs of pg-pool and pg each add a promise
   * and a stack-capturing catch per call, which was most of the difference
   * between a raw `pool.query` and this one.
   */
  query (query: string | pg.QueryConfig, values: unknown[] | undefined, name: string, prepare = false): Promise<pg.QueryResult> {
    if (this.closing) return this.use(name, (client) => this.timed(client, query, values, name, prepare), query)
    const started = performance.now()
    const span = startQuery(name, query, this.spanAttributes)
    if (this.permits > 0) {
      this.permits--
      return this.run(query, values, name, started, false, span, prepare)
    }
    return this.waitForPermit().then(() => this.run(query, values, name, started, true, span, prepare), (err: unknown) => {
      endQuery(span, err)
      throw err
    })
  }

  private run (query: string | pg.QueryConfig, values: unknown[] | undefined, name: string, started: number, waited: boolean, span: Span, prepare: boolean): Promise<pg.QueryResult> {
    this.active++
    return new Promise((resolve, reject) => {
      this.connectBounded(started, waited, (connectError, client) => {
        if (client === undefined) {
          this.releasePermit()
          this.done()
          const err = this.acquireError(connectError, started)
          endQuery(span, err)
          reject(err)
          return
        }
        const acquired = performance.now()
        this.acquireWait.observe((acquired - started) / 1000)
        if (span.isRecording()) span.setAttribute(ACQUIRE_WAIT_MS, acquired - started)
        const finish = (err: Error | null | undefined, result?: pg.QueryResult) => {
          const ms = performance.now() - acquired
          const outcome = err ? 'error' : 'ok'
          this.duration(name, outcome).observe(ms / 1000)
          this.slowQuery(name, ms, outcome)
          this.release(client, err ?? undefined)
          this.done()
          endQuery(span, err)
          if (err) reject(this.mapQueryError(err, name))
          else resolve(result!)
        }
        try {
          if (prepare) this.statements.run(client, query, values, finish)
          else client.query(query as string, values as unknown[], finish)
        } catch (err) {
          finish(err instanceof Error ? err : new Error(String(err)))
        }
      })
    })
  }

  /**
   * runs `fn` on a connection of this pool, released (or evicted) afterwards;
   * errors come back as mapQueryError maps them. With `traced`, one query span
   * covers the acquire and `fn` (internal checks pass nothing: no span).
   */
  async use<T> (name: string, fn: (client: pg.PoolClient) => Promise<T>, traced?: string | pg.QueryConfig): Promise<T> {
    const span = traced === undefined ? null : startQuery(name, traced, this.spanAttributes)
    const started = performance.now()
    let client: pg.PoolClient
    try {
      client = await this.acquire()
    } catch (err) {
      if (span !== null) endQuery(span, err)
      throw err
    }
    if (span?.isRecording() === true) span.setAttribute(ACQUIRE_WAIT_MS, performance.now() - started)
    this.active++
    try {
      const result = await fn(client)
      this.release(client)
      if (span !== null) endQuery(span)
      return result
    } catch (err) {
      this.release(client, err)
      if (span !== null) endQuery(span, err)
      throw this.mapQueryError(err, name)
    } finally {
      this.done()
    }
  }

  private done (): void {
    if (--this.active === 0 && this.onIdle !== null) this.onIdle()
  }

  /** a client for the caller to release, watched by leak detection */
  async checkout (): Promise<pg.PoolClient> {
    const stack = this.ctx.options.leakDetectionMs > 0 ? new Error('acquired here').stack : undefined
    const client = await this.acquire()
    const held: Held = { timer: undefined }
    if (stack !== undefined) {
      const since = Date.now()
      held.timer = setTimeout(() => {
        this.ctx.metrics.leaks.inc({ pool: this.label })
        this.ctx.log.warn({ pool: this.label, heldMs: Date.now() - since, acquiredAt: stack }, 'PostgreSQL client held past leakDetectionMs: possible leak')
      }, this.ctx.options.leakDetectionMs)
      held.timer.unref()
    }
    this.held.set(client, held)
    this.active++
    return client
  }

  /** one timed query on `client`: duration histogram by name, slow-query log (never the parameters) */
  async timed (client: pg.PoolClient, query: string | pg.QueryConfig, values: unknown[] | undefined, name: string, prepare = false): Promise<pg.QueryResult> {
    const started = performance.now()
    let outcome = 'error'
    try {
      const result = prepare
        ? await new Promise<pg.QueryResult>((resolve, reject) => this.statements.run(client, query, values, (err, r) => { if (err) reject(err); else resolve(r!) }))
        : await client.query(query as string, values)
      outcome = 'ok'
      return result
    } finally {
      const ms = performance.now() - started
      this.duration(name, outcome).observe(ms / 1000)
      this.slowQuery(name, ms, outcome)
    }
  }

  private slowQuery (name: string, ms: number, outcome: string): void {
    const slow = this.ctx.options.slowQueryMs
    if (slow > 0 && ms >= slow) {
      this.ctx.log.warn({ pool: this.label, query: name, durationMs: Math.round(ms), outcome }, 'slow query')
    }
  }

  private duration (name: string, outcome: string): Observer {
    const key = `${name}\u0000${outcome}`
    let child = this.durations.get(key)
    if (child === undefined) {
      child = this.ctx.metrics.queryDuration.labels(this.kind, name, outcome)
      this.durations.set(key, child)
    }
    return child
  }

  mapQueryError (err: unknown, name: string): unknown {
    const code = errorCode(err)
    if (code?.startsWith('HEADROOM_')) return err
    if (code === QUERY_CANCELED) {
      const e = this.fail('statement_timeout', new StatementTimeout(this.ctx.options.statementTimeoutMs))
      e.cause = err
      ;(e as Error & { query?: string }).query = name
      return e
    }
    if (err instanceof pg.DatabaseError && !isConnectionError(err)) return queryFailed(err)
    if (isConnectionError(err)) {
      const e = this.fail('unavailable', new Unavailable(this.label))
      e.cause = err
      return e
    }
    return err
  }

  /** refuses new work, waits up to `timeoutMs` for in-flight queries, then ends the pool */
  async close (timeoutMs: number): Promise<void> {
    this.closing = true
    if (this.waitTimer !== null) clearTimeout(this.waitTimer)
    this.waitTimer = null
    for (const w of this.waiters.splice(0)) w.reject(this.fail('closing', new Closing()))
    const settled = (p: Promise<unknown>) => new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs)
      timer.unref()
      p.then(() => { clearTimeout(timer); resolve(true) }, () => { clearTimeout(timer); resolve(true) })
    })
    if (this.active > 0 && !(await settled(new Promise<void>((resolve) => { this.onIdle = resolve })))) {
      this.ctx.log.warn({ pool: this.label, active: this.active }, 'PostgreSQL pool closing with queries still running after closeTimeoutMs')
    }
    // clients checked out by connect()/transaction() and never released would make pool.end() wait forever
    for (const client of [...this.held.keys()]) this.release(client, new Error('pool closing'))
    if (!(await settled(this.pool.end()))) {
      this.ctx.log.warn({ pool: this.label }, 'PostgreSQL pool did not end within closeTimeoutMs (clients checked out of the raw pool?)')
    }
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
