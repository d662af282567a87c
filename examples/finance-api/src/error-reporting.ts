import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { trace } from '@opentelemetry/api'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { LogIdentity } from './logging.js'

/**
 * Error tracking: one hook, off unless configured. What reaches it: each
 * error the error handler answers with a 5xx, once, and each unhandled
 * promise rejection. What it carries is chosen to hold no personal data: the
 * error's type, message and stack (a PostgreSQL error's message is replaced
 * by its SQLSTATE, as it may quote a value), the request id, the method and
 * the route template (never the URL, its ids or query string), the status
 * code and the trace ids. Never a body, a header, a cookie, SQL parameters.
 */
export interface ErrorReport {
  kind: 'request' | 'unhandledRejection'
  /** a copy of the error with only name, message, stack, and a `code` when it had a string one */
  error: Error & { code?: string }
  service: string
  version: string
  env: string
  requestId?: string
  method?: string
  /** the route template (`/api/transactions/:id`); undefined for a request no route matched */
  route?: string
  statusCode?: number
  /** of the active span when tracing is on */
  traceId?: string
  spanId?: string
}

export interface ErrorReporter {
  /** called once per error; must not throw (a throw is logged and ignored) and should not block */
  report (report: ErrorReport): void
  /** sends what is buffered; awaited when the app closes and before an unhandled rejection ends the process */
  flush? (timeoutMs: number): Promise<unknown>
}

/** What a module named by ERROR_REPORTER exports as default. */
export type ErrorReporterFactory = (identity: LogIdentity) => ErrorReporter | Promise<ErrorReporter>

/** @default 2000: how long a flush may take before the process goes on closing or exiting */
export const REPORTER_FLUSH_MS = 2000

const EMAIL = /[^\s@"'<>()]+@[^\s@"'<>()]+\.[^\s@"'<>()]+/g

/** A copy of the error holding nothing a user typed (see ErrorReport). */
export function reportableError (err: unknown): Error & { code?: string } {
  if (!(err instanceof Error)) return new Error(`non-error thrown: ${typeof err}`)
  const e = err as Error & { code?: unknown, sqlState?: unknown, routine?: unknown, cause?: unknown }
  const pg = [e, e.cause].find((x): x is { code?: unknown, sqlState?: unknown } => typeof x === 'object' && x !== null &&
    ((x as { routine?: unknown }).routine !== undefined || (x as { sqlState?: unknown }).sqlState !== undefined))
  const sqlState = pg && typeof pg.sqlState === 'string' ? pg.sqlState : pg && typeof pg.code === 'string' ? pg.code : undefined
  // (an address in a message is someone's: a careless `throw new Error(\`no account for ${email}\`)` must not carry it out)
  const copy: Error & { code?: string } = new Error(pg ? `PostgreSQL error${sqlState ? ` SQLSTATE ${sqlState}` : ''}` : e.message.replace(EMAIL, '[email]'))
  copy.name = e.name
  copy.stack = `${copy.name}: ${copy.message}\n${(e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).join('\n')}`
  if (typeof e.code === 'string') copy.code = e.code
  return copy
}

function traceIds (): { traceId?: string, spanId?: string } {
  const c = trace.getActiveSpan()?.spanContext()
  return c ? { traceId: c.traceId, spanId: c.spanId } : {}
}

/** Safe calls into the reporter: a failing reporter must never fail a request or crash the process. */
export class ErrorReporting {
  readonly #reporter: ErrorReporter
  readonly #identity: LogIdentity
  readonly #log: FastifyBaseLogger
  readonly #seen = new WeakSet<object>()

  constructor (reporter: ErrorReporter, identity: LogIdentity, log: FastifyBaseLogger) {
    this.#reporter = reporter
    this.#identity = identity
    this.#log = log
  }

  #send (report: Omit<ErrorReport, 'service' | 'version' | 'env'>): void {
    try {
      this.#reporter.report({ ...report, service: this.#identity.service, version: this.#identity.version, env: this.#identity.env })
    } catch (err) {
      this.#log.warn({ err }, 'the error reporter failed')
    }
  }

  /** A 5xx answered by the error handler; the same error object is reported once. */
  request (err: unknown, request: FastifyRequest, statusCode: number): void {
    if (typeof err === 'object' && err !== null) {
      if (this.#seen.has(err)) return
      this.#seen.add(err)
    }
    this.#send({ kind: 'request', error: reportableError(err), requestId: request.id, method: request.method, route: request.routeOptions.url, statusCode, ...traceIds() })
  }

  rejection (reason: unknown): void {
    this.#send({ kind: 'unhandledRejection', error: reportableError(reason), ...traceIds() })
  }

  async flush (timeoutMs = REPORTER_FLUSH_MS): Promise<void> {
    try {
      await this.#reporter.flush?.(timeoutMs)
    } catch (err) {
      this.#log.warn({ err }, 'the error reporter failed to flush')
    }
  }
}

/**
 * ERROR_REPORTER: a module path (relative to the working directory) or package
 * whose default export is an ErrorReporterFactory; unset: no error tracking.
 */
export async function loadErrorReporter (spec: string | undefined, identity: LogIdentity): Promise<ErrorReporter | undefined> {
  if (spec === undefined || spec.trim() === '') return undefined
  const target = spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolve(spec)).href : spec
  const mod = await import(target) as { default?: unknown }
  if (typeof mod.default !== 'function') throw new Error(`ERROR_REPORTER: ${spec} has no default export of a function (identity) => ErrorReporter`)
  const reporter = await (mod.default as ErrorReporterFactory)(identity)
  if (typeof reporter?.report !== 'function') throw new Error(`ERROR_REPORTER: the default export of ${spec} did not return an object with report(report)`)
  return reporter
}

/** The listener of reportUnhandledRejections (tests call it; emitting the event would reach the test runner's own). */
export function onUnhandledRejection (reporting: ErrorReporting, log: FastifyBaseLogger, exit: (code: number) => void): (reason: unknown) => Promise<void> {
  return async (reason) => {
    reporting.rejection(reason)
    log.fatal({ err: reason }, 'unhandled promise rejection: exiting')
    await reporting.flush()
    exit(1)
  }
}

/**
 * An unhandled rejection is reported, flushed, logged, and ends the process
 * with 1, as Node's default (throw) would: the process state is unknown.
 * Returns the function that removes the listener.
 */
export function reportUnhandledRejections (reporting: ErrorReporting, log: FastifyBaseLogger, exit: (code: number) => void = (c) => process.exit(c)): () => void {
  const listener = onUnhandledRejection(reporting, log, exit)
  process.on('unhandledRejection', listener)
  return () => { process.removeListener('unhandledRejection', listener) }
}
