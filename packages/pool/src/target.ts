import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type pg from 'pg'
import { raceTimeout, type Observer } from '@headroom/core/contracts'
import { describe, isConnectionError } from './classify.js'
import { Failures } from './failures.js'
import type { Metrics, PoolStats } from './metrics.js'
import type { QueryNames } from './names.js'
import type { NormalizedOptions } from './options.js'
import { PermitQueue } from './permits.js'
import { openPool, prefill } from './connections.js'
import { Statements } from './statements.js'
import { ACQUIRE_WAIT_MS, endQuery, poolAttributes, startQuery } from './tracing.js'
import type { Attributes, Span } from '@opentelemetry/api'

export interface TargetContext {
  options: NormalizedOptions
  log: FastifyBaseLogger
  metrics: Metrics
  names: QueryNames
}

interface Held {
  timer: NodeJS.Timeout | undefined
}

type Callback = (err: Error | null | undefined, result?: pg.QueryResult) => void

/**
 * One server: a pg.Pool behind a bounded, deadline-aware wait queue.
 *
 * pg-pool's own queue (`_pendingQueue`) has no bound, and its
 * `connectionTimeoutMillis` restarts when a queued request moves on to open a
 * connection. So at most `max` requests at a time get past this gate (a
 * PermitQueue) to `pool.connect()` (which then never queues them); up to
 * `maxWaiting` wait for a permit; everyone else fails at once. A request
 * that waited gets only what is left of `acquireTimeoutMs` for the connect.
 * Opening a connection is bounded by the client's own connect timeout (see
 * connections.ts); the errors are the pool's own (see failures.ts).
 */
export class Target implements PoolStats {
  readonly pool: pg.Pool
  readonly label: string
  readonly kind: 'primary' | 'replica'
  readonly #ctx: TargetContext
  readonly #failures: Failures
  readonly #permits: PermitQueue
  readonly #held = new Map<pg.PoolClient, Held>()
  #active = 0
  #onIdle: (() => void) | null = null
  #closing = false
  readonly #acquireWait: Observer
  readonly #durations = new Map<string, Observer>()
  /** what every span of this pool carries, built once */
  readonly spanAttributes: Attributes
  /** named prepared statements of this pool's connections, `statementCacheSize` each */
  readonly statements: Statements

  constructor (label: string, kind: 'primary' | 'replica', config: pg.ClientConfig, size: { min: number, max: number }, ctx: TargetContext) {
    const o = ctx.options
    this.label = label
    this.kind = kind
    this.#ctx = ctx
    this.#failures = new Failures(label, ctx)
    this.#permits = new PermitQueue(size.max, {
      maxWaiting: o.maxWaiting,
      timeoutMs: o.acquireTimeoutMs,
      exhausted: (waiting) => this.#failures.exhausted(waiting, size.max),
      expired: () => this.#failures.acquireTimeout()
    })
    this.#acquireWait = ctx.metrics.acquireWait.labels(label)
    this.spanAttributes = poolAttributes(label, kind, config)
    this.statements = new Statements(o.statementCacheSize, ctx.metrics.statements(label))
    this.pool = openPool(config, size, o, { lost: (err) => this.#failures.connectionLost(err), closing: () => this.#closing })
  }

  stats (): { total: number, idle: number, waiting: number } {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.#permits.waiting + this.pool.waitingCount }
  }

  get waiting (): number {
    return this.#permits.waiting
  }

  /** opens `min` connections now rather than on the first requests */
  async prefill (): Promise<void> {
    const failed = await prefill(this.pool)
    if (failed !== undefined) {
      this.#ctx.log.warn({ pool: this.label, reason: describe(failed) }, 'PostgreSQL pool could not open its minimum connections; it keeps trying on demand')
    }
  }

  /** a connection through the gate; every path out of here is bounded by acquireTimeoutMs */
  async acquire (): Promise<pg.PoolClient> {
    if (this.#closing) throw this.#failures.closing()
    const started = performance.now()
    let waited = false
    if (!this.#permits.tryTake()) {
      await this.#permits.wait()
      waited = true
    }
    return await new Promise<pg.PoolClient>((resolve, reject) => {
      this.#connect(started, waited, (err, client) => { if (client !== undefined) resolve(client); else reject(err) })
    })
  }

  /**
   * The connection of a caller that holds a permit: on failure the permit is
   * given back and the error is the pool's own; on success the wait is
   * observed and `acquired` is when it ended.
   */
  #connect (started: number, waited: boolean, cb: (err: Error | null, client?: pg.PoolClient, acquired?: number) => void): void {
    this.#connectBounded(started, waited, (err, client) => {
      if (client === undefined) {
        this.#permits.release()
        cb(this.#failures.acquire(err, performance.now() - started))
        return
      }
      const acquired = performance.now()
      this.#acquireWait.observe((acquired - started) / 1000)
      cb(null, client, acquired)
    })
  }

  /**
   * pool.connect() within what is left of acquireTimeoutMs. An idle client is
   * handed over at once, and a new connection is bounded by the client's
   * connect timeout; a deadline of our own is armed only when neither holds
   * (the wait already used part of the budget, or the raw pool's own users
   * hold every connection and pg-pool would queue this caller).
   */
  #connectBounded (started: number, waited: boolean, cb: (err: unknown, client?: pg.PoolClient) => void): void {
    const pool = this.pool
    if (pool.idleCount > 0 || (!waited && pool.totalCount < (pool.options.max ?? 0))) {
      pool.connect((err, client) => { cb(err, err ? undefined : client) })
      return
    }
    this.#connectWithin(this.#ctx.options.acquireTimeoutMs - (performance.now() - started)).then((c) => cb(undefined, c), (e: unknown) => cb(e))
  }

  #connectWithin (ms: number): Promise<pg.PoolClient> {
    const connecting = this.pool.connect()
    return raceTimeout(connecting, Math.max(1, ms), () => {
      // a connection that comes after the deadline goes back to the pool; a failure then is nobody's
      connecting.then((late) => { late.release() }, () => {})
      throw this.#failures.acquireTimeout()
    })
  }

  /** gives the client back: evicted on a connection-class error, kept on any other */
  release (client: pg.PoolClient, err?: unknown, destroy = false): void {
    const held = this.#held.get(client)
    if (held !== undefined) {
      clearTimeout(held.timer)
      this.#held.delete(client)
      this.#done()
    }
    const evict = destroy || (err !== undefined && isConnectionError(err))
    if (evict) this.#ctx.metrics.errors.inc({ pool: this.label, kind: 'evicted' })
    client.release(evict ? (err instanceof Error ? err : new Error(describe(err))) : undefined)
    this.#permits.release()
  }

  /**
   * One query on a connection of this pool: what `use()` + `timed()` do, on
   * pg's callback APIs. The promise APIs of pg-pool and pg each add a promise
   * and a stack-capturing catch per call, which was most of the difference
   * between a raw `pool.query` and this one.
   */
  query (query: string | pg.QueryConfig, values: unknown[] | undefined, name: string, prepare = false): Promise<pg.QueryResult> {
    if (this.#closing) return this.use(name, (client) => this.timed(client, query, values, name, prepare), query)
    const started = performance.now()
    const span = startQuery(name, query, this.spanAttributes)
    if (this.#permits.tryTake()) return this.#run(query, values, name, started, false, span, prepare)
    return this.#permits.wait().then(() => this.#run(query, values, name, started, true, span, prepare), (err: unknown) => {
      endQuery(span, err)
      throw err
    })
  }

  #run (query: string | pg.QueryConfig, values: unknown[] | undefined, name: string, started: number, waited: boolean, span: Span, prepare: boolean): Promise<pg.QueryResult> {
    this.#active++
    return new Promise((resolve, reject) => {
      this.#connect(started, waited, (connectError, client, acquired) => {
        if (client === undefined) {
          this.#done()
          endQuery(span, connectError)
          reject(connectError)
          return
        }
        if (span.isRecording()) span.setAttribute(ACQUIRE_WAIT_MS, acquired! - started)
        this.#send(client, query, values, prepare, (err, result) => {
          this.#finished(name, acquired!, err)
          this.#settle(client, span, err ?? undefined)
          if (err) reject(this.mapQueryError(err, name))
          else resolve(result!)
        })
      })
    })
  }

  /** one query on pg's callback API (the promise APIs add a promise and a stack-capturing catch per call), as a prepared statement or not */
  #send (client: pg.PoolClient, query: string | pg.QueryConfig, values: unknown[] | undefined, prepare: boolean, cb: Callback): void {
    try {
      if (prepare) this.statements.run(client, query, values, cb)
      else client.query(query as string, values as unknown[], cb)
    } catch (err) {
      cb(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** the finish-query step: duration histogram by name and outcome, slow-query log (never the parameters) */
  #finished (name: string, started: number, err: unknown): void {
    const ms = performance.now() - started
    const outcome = err ? 'error' : 'ok'
    this.#duration(name, outcome).observe(ms / 1000)
    const slow = this.#ctx.options.slowQueryMs
    if (slow > 0 && ms >= slow) {
      this.#ctx.log.warn({ pool: this.label, query: name, durationMs: Math.round(ms), outcome }, 'slow query')
    }
  }

  /** the end of a piece of work on a connection: the client released (evicted on a connection-class error), its span ended */
  #settle (client: pg.PoolClient, span: Span | null, err?: unknown): void {
    this.release(client, err)
    this.#done()
    if (span !== null) endQuery(span, err)
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
    this.#active++
    let result: T
    try {
      result = await fn(client)
    } catch (err) {
      this.#settle(client, span, err)
      throw this.mapQueryError(err, name)
    }
    this.#settle(client, span)
    return result
  }

  #done (): void {
    if (--this.#active === 0 && this.#onIdle !== null) this.#onIdle()
  }

  /** a client for the caller to release, watched by leak detection */
  async checkout (): Promise<pg.PoolClient> {
    const stack = this.#ctx.options.leakDetectionMs > 0 ? new Error('acquired here').stack : undefined
    const client = await this.acquire()
    const held: Held = { timer: undefined }
    if (stack !== undefined) {
      const since = Date.now()
      held.timer = setTimeout(() => {
        this.#ctx.metrics.leaks.inc({ pool: this.label })
        this.#ctx.log.warn({ pool: this.label, heldMs: Date.now() - since, acquiredAt: stack }, 'PostgreSQL client held past leakDetectionMs: possible leak')
      }, this.#ctx.options.leakDetectionMs)
      held.timer.unref()
    }
    this.#held.set(client, held)
    this.#active++
    return client
  }

  /** one timed query on `client`: duration histogram by name, slow-query log (never the parameters) */
  timed (client: pg.PoolClient, query: string | pg.QueryConfig, values: unknown[] | undefined, name: string, prepare = false): Promise<pg.QueryResult> {
    const started = performance.now()
    return new Promise((resolve, reject) => {
      this.#send(client, query, values, prepare, (err, result) => {
        this.#finished(name, started, err)
        if (err) reject(err)
        else resolve(result!)
      })
    })
  }

  #duration (name: string, outcome: string): Observer {
    const key = `${name}\u0000${outcome}`
    let child = this.#durations.get(key)
    if (child === undefined) {
      child = this.#ctx.metrics.queryDuration.labels(this.kind, name, outcome)
      this.#durations.set(key, child)
    }
    return child
  }

  /** a query's error as the pool's callers see it (see Failures) */
  mapQueryError (err: unknown, name: string): unknown {
    return this.#failures.query(err, name)
  }

  /** refuses new work, waits up to `timeoutMs` for in-flight queries, then ends the pool */
  async close (timeoutMs: number): Promise<void> {
    this.#closing = true
    this.#permits.close(() => this.#failures.closing())
    const settled = (p: Promise<unknown>) => raceTimeout(p.then(() => true, () => true), timeoutMs, () => false)
    if (this.#active > 0 && !(await settled(new Promise<void>((resolve) => { this.#onIdle = resolve })))) {
      this.#ctx.log.warn({ pool: this.label, active: this.#active }, 'PostgreSQL pool closing with queries still running after closeTimeoutMs')
    }
    // clients checked out by connect()/transaction() and never released would make pool.end() wait forever
    for (const client of [...this.#held.keys()]) this.release(client, new Error('pool closing'))
    if (!(await settled(this.pool.end()))) {
      this.#ctx.log.warn({ pool: this.label }, 'PostgreSQL pool did not end within closeTimeoutMs (clients checked out of the raw pool?)')
    }
  }
}
