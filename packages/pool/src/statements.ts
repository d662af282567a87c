import { createHash } from 'node:crypto'
import type pg from 'pg'
import { errorCode } from './classify.js'

/** 0A000 on a statement that had parsed: "cached plan must not change result type" (a migration changed what it returns) */
const PLAN_CHANGED = '0A000'
/** 26000: the server has no statement of that name (DEALLOCATE ALL, DISCARD ALL, a pooler between us and the server) */
const NO_STATEMENT = '26000'
/**
 * 42P05 on a Parse: the session already holds a statement of that name, one
 * this connection's map does not know (a session shared by several
 * connections, as PGlite's socket server and session poolers do; a PREPARE
 * sent by hand). Names are a hash of the text, so it is this very statement.
 */
const ALREADY_PREPARED = '42P05'

/** what pg keeps per connection: the names it has parsed (Connection#parsedStatements, one object per pg.Client) */
interface WithParsed { connection: { parsedStatements: Record<string, string> } }

export interface StatementCounters {
  /** a statement left the cache of an open connection (evicted, invalidated) or a connection holding some ended */
  size (delta: number): void
  evicted (): void
  reprepared (reason: 'result_type_changed' | 'missing' | 'already_prepared'): void
}

type Callback = (err: Error | null | undefined, result?: pg.QueryResult) => void

/** pg's callback API (its types have no overload for a config, values and a callback) */
function send (client: pg.PoolClient, config: pg.QueryConfig, values: unknown[] | undefined, cb: Callback): void {
  client.query(config as unknown as string, values as unknown[], cb)
}

/**
 * Named prepared statements, at most `max` per connection (least recently
 * used first out, with a DEALLOCATE on the server). The LRU lives on the
 * pg.Client, as pg's own `parsedStatements` does: a new connection (after a
 * loss, a lifetime's end, a failover) starts empty on both sides. Names are
 * a hash of the statement's text, so the same text has the same name on
 * every connection and two texts never share one.
 */
export class Statements {
  readonly #lrus = new WeakMap<pg.PoolClient, Map<string, true>>()
  readonly #names = new Map<string, string>()

  readonly #max: number
  readonly #counters: StatementCounters

  constructor (max: number, counters: StatementCounters) {
    this.#max = max
    this.#counters = counters
  }

  /** `headroom_` + 96 bits of the text's SHA-1: well under PostgreSQL's 63-byte identifiers */
  nameOf (text: string): string {
    let name = this.#names.get(text)
    if (name === undefined) {
      name = `headroom_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`
      // statements are usually constants; the cap keeps concatenated ones from growing this map
      if (this.#names.size < this.#max * 10) this.#names.set(text, name)
    }
    return name
  }

  /**
   * Runs `query` on `client` as a named statement. A statement the server
   * no longer has, or whose plan a schema change invalidated, is prepared
   * again and run once more: the caller sees the second answer, not the
   * first error. Not for transactions: there the first error aborts the
   * transaction, and nothing can be retried.
   */
  run (client: pg.PoolClient, query: string | pg.QueryConfig, values: unknown[] | undefined, cb: Callback): void {
    const text = typeof query === 'string' ? query : query.text
    const name = this.nameOf(text)
    const config: pg.QueryConfig = typeof query === 'string' ? { text, name } : { ...query, name }
    const parsed = (client as unknown as WithParsed).connection.parsedStatements
    const lru = this.#touch(client, name, parsed)
    const wasParsed = parsed[name] !== undefined
    send(client, config, values, (err, result) => {
      if (!err) return cb(err, result)
      const code = errorCode(err)
      if (wasParsed && (code === PLAN_CHANGED || code === NO_STATEMENT)) {
        delete parsed[name]
        // DEALLOCATE goes first on the same connection (pg sends queued queries in order), then the new Parse
        if (code === PLAN_CHANGED) client.query(`DEALLOCATE ${name}`, () => {})
        this.#counters.reprepared(code === PLAN_CHANGED ? 'result_type_changed' : 'missing')
        send(client, config, values, (retryError, retried) => {
          if (retryError && parsed[name] === undefined) this.#forget(lru, name)
          cb(retryError, retried)
        })
        return
      }
      if (!wasParsed && code === ALREADY_PREPARED) {
        // adopt the server's statement: the second attempt sends only Bind and Execute
        parsed[name] = text
        this.#counters.reprepared('already_prepared')
        send(client, config, values, (retryError, retried) => {
          if (retryError && errorCode(retryError) === NO_STATEMENT) delete parsed[name]
          cb(retryError, retried)
        })
        return
      }
      // the Parse itself failed (a syntax error): the server holds nothing under this name
      if (parsed[name] === undefined) this.#forget(lru, name)
      cb(err)
    })
  }

  /** marks `name` most recently used on `client`; past `max`, the least recently used is deallocated */
  #touch (client: pg.PoolClient, name: string, parsed: Record<string, string>): Map<string, true> {
    let lru = this.#lrus.get(client)
    if (lru === undefined) {
      const own = new Map<string, true>()
      lru = own
      this.#lrus.set(client, own)
      // a connection that ends takes its statements with it (server side and pg's map alike)
      client.once('end', () => { this.#counters.size(-own.size) })
    }
    if (lru.delete(name)) {
      lru.set(name, true)
      return lru
    }
    if (lru.size >= this.#max) {
      const oldest = lru.keys().next().value as string
      lru.delete(oldest)
      this.#counters.size(-1)
      this.#counters.evicted()
      if (parsed[oldest] !== undefined) {
        delete parsed[oldest]
        // queued before this query: one round trip, only when a connection holds more than `max` statements
        client.query(`DEALLOCATE ${oldest}`, () => {})
      }
    }
    lru.set(name, true)
    this.#counters.size(1)
    return lru
  }

  #forget (lru: Map<string, true>, name: string): void {
    if (lru.delete(name)) this.#counters.size(-1)
  }
}
