import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { traceFields, tracingStarted } from './tracing.js'

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

/** What every log line carries besides pino's own fields. */
export interface LogIdentity {
  service: string
  version: string
  env: string
}

/** name and version from the example's package.json (next to src/ and dist/ alike) */
export function serviceIdentity (env: string): LogIdentity {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string, version: string }
  return { service: pkg.name, version: pkg.version, env }
}

/**
 * pino-pretty is a development dependency: a production install (`pnpm deploy
 * --prod`, the image) has none, and there the logs are JSON anyway.
 */
function prettyAvailable (): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
    return true
  } catch {
    return false
  }
}

/**
 * JSON lines, each with service, version, env and the request id (`reqId`);
 * in development on a terminal (stdout a TTY), one coloured line per request
 * through pino-pretty instead. LOG_FORMAT is not a thing: pipe the output
 * (`| cat`) to get JSON on a terminal.
 */
/** Development, stdout a terminal, pino-pretty installed: the logs are for a person. */
export function prettyLogs (env: string, tty = process.stdout.isTTY === true): boolean {
  return tty && env === 'development' && prettyAvailable()
}

/**
 * For a person at a terminal: one line per request, `GET /api/summary 200
 * 12.3 ms`, where Fastify logs two (incoming, completed) of objects.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    const line = `${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)} ms`
    if (error) reply.log.error({ err: error }, line)
    else reply.log.info(line)
  }
}

/**
 * `traced` (default: whether tracing.ts started the SDK): every line logged
 * in a traced request carries `trace_id`, `span_id` and `trace_flags` of the
 * active span (pino's mixin, called per line); untraced, nothing is added.
 */
export function loggerOptions (level: string, identity: LogIdentity, tty = process.stdout.isTTY === true, traced = tracingStarted()): FastifyServerOptions['logger'] {
  const pretty = prettyLogs(identity.env, tty)
  return {
    level,
    ...(traced ? { mixin: traceFields } : {}),
    base: { service: identity.service, version: identity.version, env: identity.env },
    serializers: { err: safeError },
    // a cookie or CSRF header in a log line is a session handed to whoever reads the logs
    redact: { paths: ['req.headers.cookie', 'req.headers["x-csrf-token"]', 'req.headers.authorization', 'res.headers["set-cookie"]'], remove: true },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service,version,env', singleLine: true }
          }
        }
      : {})
  }
}
