import { STATUS_CODES } from 'node:http'
import { shedReason } from '@headroom/health'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

/** @default 5: seconds a client waits before retrying a 503 that did not say how long */
export const DEFAULT_RETRY_AFTER_S = 5
/** what a 500 says, whatever happened: the details are in the log line with the same request id */
export const INTERNAL_MESSAGE = 'internal error'
/** what a 503 of a dependency says: which one, where it runs and why it failed are for the logs */
export const UNAVAILABLE_MESSAGE = 'the service is temporarily unavailable; retry shortly'

/** The example's own errors (errors.ts): their messages are written for clients, 5xx included. */
const OWN_CODE = /^FINANCE_[A-Z_]+$/
/** A code worth telling a client: @fastify/error codes, never a SQLSTATE (`22021`) or a Node errno (`ECONNREFUSED`). */
const PUBLIC_CODE = /^(FINANCE|HEADROOM|FST)_[A-Z0-9_]+$/

/** what may be thrown: @fastify/error's errors, ajv's, the plugins' (with `headers` such as Retry-After), and anything else */
type HandledError = FastifyError & { status?: unknown, headers?: Record<string, string | number> }

interface ErrorBody { statusCode: number, code?: string, error: string, message: string, requestId: string }

function statusOf (err: HandledError): number {
  for (const s of [err.statusCode, err.status]) {
    if (typeof s === 'number' && Number.isInteger(s) && s >= 400 && s <= 599) return s
  }
  return 500
}

function retryAfterOf (err: HandledError): string {
  const value = err.headers?.['retry-after'] ?? err.headers?.['Retry-After']
  return typeof value === 'string' || typeof value === 'number' ? String(value) : String(DEFAULT_RETRY_AFTER_S)
}

/**
 * One error handler for the whole example; every body carries the request id.
 * A 4xx keeps its message and code (they describe the client's input: ajv's
 * validation messages, the example's errors, the plugins' 4xx). A 5xx tells nothing about the
 * internals: a 500 is "internal error" and the request id, a 503 "temporarily
 * unavailable" with its code, Retry-After and the request id. The log line
 * (same `reqId`) has the whole error: SQLSTATE, PostgreSQL's message, the
 * host that did not answer, the cause chain.
 */
export function errorHandler (err: HandledError, request: FastifyRequest, reply: FastifyReply, logClientErrors = true): ErrorBody {
  const statusCode = statusOf(err)
  const code = typeof err.code === 'string' && PUBLIC_CODE.test(err.code) ? err.code : undefined
  const error = STATUS_CODES[statusCode] ?? 'Error'
  reply.code(statusCode)
  if (statusCode < 500) {
    // (REQUEST_LOG=all only: a 4xx is the client's, counted by status in the metrics)
    if (logClientErrors) request.log.info({ err }, err.message)
    if (err.headers) reply.headers(err.headers)
    return { statusCode, ...(code ? { code } : {}), error, message: err.message, requestId: request.id }
  }
  // a request shed by @headroom/health is no error of this request: the plugin
  // logs each shedding episode and counts every shed request
  if (shedReason(request) === undefined) request.log.error({ err }, err.message)
  if (statusCode !== 502 && statusCode !== 503 && statusCode !== 504) {
    return { statusCode, error, message: INTERNAL_MESSAGE, requestId: request.id }
  }
  // (a route may have set its own, as /api/quotes does)
  if (!reply.hasHeader('retry-after')) reply.header('retry-after', retryAfterOf(err))
  const message = code && OWN_CODE.test(code) ? err.message : UNAVAILABLE_MESSAGE
  return { statusCode, ...(code ? { code } : {}), error, message, requestId: request.id }
}
