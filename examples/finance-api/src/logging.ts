import type { FastifyServerOptions } from 'fastify'

/**
 * PostgreSQL errors carry the offending values in `detail`, `where` and
 * `internalQuery` ("Key (email)=(ada@example.com) already exists"); pino's
 * default error serializer would log them with every 500. Keep what helps
 * an operator (type, message, code, status, stack) and nothing a user typed.
 */
export function safeError (err: unknown): { type: string, message: string, stack: string, [key: string]: unknown } {
  if (!(err instanceof Error)) return { type: typeof err, message: String(err), stack: '' }
  const e = err as Error & { code?: unknown, statusCode?: unknown, routine?: unknown, sqlState?: unknown }
  const out: { type: string, message: string, stack: string, [key: string]: unknown } = { type: e.name, message: e.message, stack: e.stack ?? '' }
  if (e.code !== undefined) out.code = e.code
  if (e.statusCode !== undefined) out.statusCode = e.statusCode
  if (e.routine !== undefined) out.routine = e.routine
  // @headroom/pool's HEADROOM_POOL_QUERY_FAILED: the SQLSTATE of the driver's error (its `cause`)
  if (e.sqlState !== undefined) out.sqlState = e.sqlState
  if (e.cause !== undefined) out.cause = safeError(e.cause)
  return out
}

export function loggerOptions (level: string): FastifyServerOptions['logger'] {
  return {
    level,
    serializers: { err: safeError },
    // a cookie or CSRF header in a log line is a session handed to whoever reads the logs
    redact: { paths: ['req.headers.cookie', 'req.headers["x-csrf-token"]', 'req.headers.authorization', 'res.headers["set-cookie"]'], remove: true }
  }
}
