import pg from 'pg'

/**
 * Counts every query a server process sends, whatever pools it: the
 * prototype of the one `pg` both servers load (pnpm resolves the Express
 * server's and @headroom/pool's `pg` to the same copy). One integer
 * increment per query on the timed path; read over GET /__queries outside it.
 */
let count = 0
let installed = false

export function countQueries (): () => number {
  if (!installed) {
    installed = true
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }
    const query = proto.query
    proto.query = function counted (this: unknown, ...args: unknown[]) {
      count++
      return query.apply(this, args)
    }
  }
  return () => count
}
