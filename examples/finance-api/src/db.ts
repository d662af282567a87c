/**
 * What the routes need from the database, and nothing more: writes and
 * transactions on the primary, reads that may go to a replica. server.ts
 * adapts @headroom/pool's `fastify.db` to it, so the SQL below never depends
 * on how connections are pooled or routed.
 */
export interface QueryResult<R> { rows: R[], rowCount: number | null }

/** `prepare`: send it as a named prepared statement, planned once per connection (@headroom/pool's `QueryOptions`) */
export interface QueryOptions { prepare?: boolean }

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult<R>>
}

export interface Db extends Queryable {
  /** a read that tolerates a replica (read-your-writes is the pool's job) */
  read<R = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult<R>>
  /** BEGIN … COMMIT on the primary; ROLLBACK on any throw */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
}
