/**
 * Which errors cost a connection. Only connection-class SQLSTATEs do
 * (HikariCP's list, plus 25006 after a failover: a demoted primary turned
 * read-only keeps refusing writes on that connection), and errors that are
 * not from the server at all (a reset socket, "Connection terminated"). A
 * unique violation or a syntax error leaves the connection as good as it
 * was, unlike pg-pool's own `pool.query`, which destroys it.
 */
/** the classes PostgreSQL uses (digits, F0, HV, P0, XX): a socket's EPIPE is five capitals too, and no SQLSTATE */
export const SQLSTATE = /^(?:[0-9]{2}|F0|HV|P0|XX)[0-9A-Z]{3}$/
// 25P03 and 57P05 are FATAL too: the server closed the session (idle in transaction, idle session timeout)
const EVICTING = new Set(['57P01', '57P02', '57P03', '25006', '25P03', '57P05'])

export function errorCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

export function isConnectionError (err: unknown): boolean {
  const code = errorCode(err)
  if (code === undefined) return true
  if (code.startsWith('HEADROOM_')) return false
  if (SQLSTATE.test(code)) return code.startsWith('08') || EVICTING.has(code)
  // ECONNRESET, EPIPE, ETIMEDOUT, ...
  return true
}

/** 57014 query_canceled: statement_timeout (or a cancel request) stopped the query; the connection is fine */
export const QUERY_CANCELED = '57014'
/** 40001 on a hot standby: canceled by a conflict with WAL replay; the primary can answer it */
export const SERIALIZATION_FAILURE = '40001'

/** a short description of an error for logs and health checks (never for clients): code and message, then its cause's, no parameters */
export function describe (err: unknown): string {
  const code = errorCode(err)
  const message = err instanceof Error ? err.message : String(err)
  const own = code !== undefined && !message.includes(code) ? `${code} ${message}` : message
  const cause = (err as { cause?: unknown } | null)?.cause
  return cause !== undefined && cause !== err && code?.startsWith('HEADROOM_') ? `${own}: ${describe(cause)}` : own
}
