import type pg from 'pg'
import type { Db, QueryOptions, QueryText, ReadOptions } from './db.js'
import { type ConsistencyToken, formatLsn, parseLsn, parseToken } from './lsn.js'
import type { Transaction, TransactionOptions } from './transaction.js'

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
  readonly #db: Db
  #lsn: bigint | null
  readonly #store: TokenStore | null
  readonly #key: string | false
  #loaded: boolean

  constructor (db: Db, lsn: bigint | null, store: TokenStore | null, key: string | false) {
    this.#db = db
    this.#lsn = lsn
    this.#store = store
    this.#key = key
    this.#loaded = store === null || key === false
  }

  /** the WAL position this scope's reads must see, as a string to store; undefined before any write */
  get consistencyToken (): ConsistencyToken | undefined {
    const lsn = this.#required()
    return lsn === null ? undefined : formatLsn(lsn)
  }

  /** reads from now on see at least the write behind `token` (from an earlier request); a malformed token is a 400 */
  after (token: ConsistencyToken | null | undefined): this {
    if (token != null) this.#raise(parseToken(token))
    return this
  }

  #required (): bigint | null {
    if (!this.#loaded) {
      this.#loaded = true
      // a token kept in the session by an earlier request; a malformed one is ignored, not fatal
      const stored = parseLsn(this.#store!.get(this.#key as string))
      if (stored !== null && (this.#lsn === null || stored > this.#lsn)) this.#lsn = stored
    }
    return this.#lsn
  }

  #raise (lsn: bigint): void {
    const current = this.#required()
    if (current !== null && current >= lsn) return
    this.#lsn = lsn
    if (this.#store !== null && this.#key !== false) this.#store.set(this.#key, formatLsn(lsn))
  }

  readonly #track = (text: string | null): void => {
    const lsn = parseLsn(text)
    if (lsn !== null) this.#raise(lsn)
  }

  /** a query on the primary; a write moves this scope's consistency token forward */
  query<R extends pg.QueryResultRow = pg.QueryResultRow> (query: QueryText, values?: unknown[], options?: QueryOptions): Promise<pg.QueryResult<R>> {
    return this.#db.primaryQuery(query, values, options, this.#track) as Promise<pg.QueryResult<R>>
  }

  /** a read that sees this scope's writes: a replica that has replayed them, else the primary */
  async read<R extends pg.QueryResultRow = pg.QueryResultRow> (query: QueryText, values?: unknown[], options?: ReadOptions): Promise<pg.QueryResult<R>> {
    if (options?.after != null) this.after(options.after)
    return await this.#db.routeRead(query, values, options, this.#required()) as pg.QueryResult<R>
  }

  /** a transaction on the primary; its commit moves the consistency token forward */
  transaction<T> (fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return this.#db.runTransaction(fn, options, this.#track)
  }
}
