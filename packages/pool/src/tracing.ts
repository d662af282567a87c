import { childSpan, failSpan, tracer } from '@headroom/core/contracts'
import { type Attributes, type Span, SpanKind } from '@opentelemetry/api'
import type pg from 'pg'
import { SQLSTATE } from './classify.js'
import { normalizeStatement } from './names.js'

/**
 * Query spans in the OpenTelemetry database conventions. The statement goes
 * out only as `normalizeStatement` leaves it (literals replaced by `?`),
 * never a parameter; the server's address is the operator's to see.
 */
const poolTracer = tracer('@headroom/pool')

export const ACQUIRE_WAIT_MS = 'headroom.pool.acquire_wait_ms'
// the first keyword, past comments and opening parentheses
const OPERATION = /^(?:\s+|--[^\n]*|\/\*[\s\S]*?\*\/|\()*([A-Za-z]+)/
const MAX_TEXT = 1000

/** what every span of one pool carries: which pool, which server */
export function poolAttributes (label: string, kind: 'primary' | 'replica', config: pg.ClientConfig): Attributes {
  const attributes: Attributes = { 'db.system.name': 'postgresql', 'db.client.connection.pool.name': label, 'headroom.pool.role': kind }
  let { host, port, database } = config
  if (config.connectionString !== undefined) {
    try {
      const url = new URL(config.connectionString)
      host ??= url.hostname === '' ? undefined : decodeURIComponent(url.hostname)
      port ??= url.port === '' ? undefined : Number(url.port)
      database ??= url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined
    } catch {
      // not a URL (a key=value string): pg parses it; the span does without the server
    }
  }
  if (typeof host === 'string' && host !== '') attributes['server.address'] = host
  attributes['server.port'] = typeof port === 'number' && Number.isFinite(port) ? port : 5432
  if (typeof database === 'string' && database !== '') attributes['db.namespace'] = database
  return attributes
}

export function textOf (query: string | pg.QueryConfig): string {
  return typeof query === 'string' ? query : query.text
}

/**
 * A CLIENT span for one query, named after its label (the caller's name or
 * the normalised statement: `db.query.summary`), inside a recording span only
 * (`childSpan`: a health check or a sampled-out request makes none).
 * Attributes beyond the pool's own are built only when the span records.
 */
export function startQuery (name: string, query: string | pg.QueryConfig, pool: Attributes): Span {
  const span = childSpan(poolTracer, name, { kind: SpanKind.CLIENT, attributes: pool })
  if (span.isRecording()) {
    const text = textOf(query)
    const operation = OPERATION.exec(text)?.[1]
    if (operation !== undefined) span.setAttribute('db.operation.name', operation.toUpperCase())
    span.setAttribute('db.query.summary', name)
    span.setAttribute('db.query.text', normalizeStatement(text, MAX_TEXT))
  }
  return span
}

/** ends a query span; on an error, status ERROR with the SQLSTATE (never the driver's message, which can quote a value) */
export function endQuery (span: Span, err?: unknown): void {
  if (err != null && span.isRecording()) {
    const cause = (err as { cause?: unknown }).cause
    const code = sqlState(err) ?? sqlState(cause)
    if (code !== undefined) span.setAttribute('db.response.status_code', code)
    failSpan(span, code !== undefined && !isHeadroom(err) ? { code } : err)
  }
  span.end()
}

function sqlState (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined
}

function isHeadroom (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('HEADROOM_')
}

export { poolTracer }
