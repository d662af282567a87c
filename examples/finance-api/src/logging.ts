import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { shedReason } from '@headroom/health'
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
 * REQUEST_LOG: which requests get a log line of their own.
 * - `all`: every request (Fastify's `incoming request` and `request
 *   completed` lines, or one line in pretty mode), and each 4xx's reason;
 * - `errors`: only what an operator needs from a busy production instance:
 *   requests answered 5xx and requests slower than REQUEST_LOG_SLOW_MS, one
 *   line each at completion with the method, URL, status and time;
 * - `off`: none.
 * Whatever the mode, a 5xx's error is logged with its cause by the error
 * handler, and requests shed by @headroom/health are not logged one by one
 * in `errors` mode (the plugin logs each shedding episode, and a line per
 * refused request would spend what shedding saves).
 */
export const REQUEST_LOG_MODES = ['all', 'errors', 'off'] as const
export type RequestLogMode = typeof REQUEST_LOG_MODES[number]

/**
 * The request log lines, by REQUEST_LOG; every line is written through the
 * request's logger, so it carries `reqId` (and the trace ids when traced).
 * `pretty`: for a person at a terminal, one line per request, `GET
 * /api/summary 200 12.3 ms`, where Fastify logs two objects.
 */
export class RequestLog extends LogController {
  readonly mode: RequestLogMode
  readonly slowMs: number
  readonly pretty: boolean

  constructor (opts: { mode: RequestLogMode, slowMs: number, pretty?: boolean }) {
    super()
    this.mode = opts.mode
    this.slowMs = opts.slowMs
    this.pretty = opts.pretty ?? false
  }

  /** whether a 4xx's reason gets an info line of its own (the error handler asks) */
  get clientErrors (): boolean {
    return this.mode === 'all'
  }

  override incomingRequest (request: FastifyRequest, reply: FastifyReply): void {
    if (this.mode === 'all' && !this.pretty) super.incomingRequest(request, reply)
  }

  override routeNotFound (request: FastifyRequest, reply: FastifyReply): void {
    if (this.mode === 'all') super.routeNotFound(request, reply)
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.mode === 'off' || this.isLogDisabled(request)) return
    if (this.mode === 'all') {
      if (!this.pretty) super.requestCompleted(error, request, reply)
      else if (error) reply.log.error({ err: error }, this.#line(request, reply))
      else reply.log.info(this.#line(request, reply))
      return
    }
    const failed = error != null || (reply.statusCode >= 500 && shedReason(request) === undefined)
    const slow = reply.elapsedTime >= this.slowMs
    if (!failed && !slow) return
    const level = failed ? 'error' : 'warn'
    if (this.pretty) {
      reply.log[level](error ? { err: error } : {}, this.#line(request, reply))
      return
    }
    const fields = { req: request, res: reply, responseTime: reply.elapsedTime, ...(slow ? { slow: true } : {}), ...(error ? { err: error } : {}) }
    reply.log[level](fields, failed ? 'request failed' : 'slow request')
  }

  #line (request: FastifyRequest, reply: FastifyReply): string {
    return `${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)} ms`
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
