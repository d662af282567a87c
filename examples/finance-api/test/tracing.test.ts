/**
 * Tracing in-process, with an in-memory exporter: the HTTP server span of an
 * API route (name, route, status, request id, parent from `traceparent`),
 * none for probes, /metrics and static files, and the trace ids in every log
 * line of a traced request. The SDK off by default, and no SDK module loaded,
 * is tracing-process.test.ts (a fresh process).
 */
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { requestedExporters, startTracing, stopTracing, tracingStarted, untracedPath } from '../src/tracing.js'
import { Client } from './helpers.js'
import { hostileApp, user } from './hostile.js'
import { LogLines } from '@headroom/testing'

const exporter = new InMemorySpanExporter()
const serverSpans = () => exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)

t.test('which variables turn tracing on: the standard ones only, OTEL_SDK_DISABLED wins, bad values are configuration problems', async (t) => {
  t.same(requestedExporters({}), [], 'nothing set: off')
  t.same(requestedExporters({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }), [], 'a service name or a sampler alone: off')
  t.same(requestedExporters({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), ['otlp'])
  t.same(requestedExporters({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }), ['otlp'])
  t.same(requestedExporters({ OTEL_TRACES_EXPORTER: 'console' }), ['console'])
  t.same(requestedExporters({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), [], 'none: off even with an endpoint')
  t.same(requestedExporters({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), [], 'OTEL_SDK_DISABLED wins')
  t.equal(loadConfig({}).tracing, false)
  t.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).tracing, true)
  t.throws(() => loadConfig({ OTEL_TRACES_EXPORTER: 'zipkin' }), /OTEL_TRACES_EXPORTER: zipkin is not supported/)
  t.throws(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf or http\/json/)
  for (const p of ['/', '/health', '/health/ready', '/metrics', '/assets/app.js']) t.ok(untracedPath(p), `${p} untraced`)
  for (const p of ['/api/summary', '/healthz-not-a-probe', '/api/assets']) t.notOk(untracedPath(p), `${p} traced`)
})

t.test('with tracing on', async (t) => {
  t.notOk(tracingStarted(), 'nothing started tracing before')
  t.ok(await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }, { service: 'finance-api', version: '0.0.0', env: 'test', exporter }))
  t.teardown(stopTracing)
  const logs = new LogLines()
  const app = await hostileApp(t, { logs })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const { client } = await user(app, 'traced@example.com')
  const http = new Client(base)
  http.cookie = client.cookie

  t.test('an API route: one server span named by its route, with method, route, status and request id', async (t) => {
    exporter.reset()
    const res = await http.get('/api/summary')
    t.equal(res.status, 200)
    const [span, ...others] = serverSpans()
    t.equal(others.length, 0, 'one server span')
    t.equal(span?.name, 'GET /api/summary')
    t.match(span?.attributes, { 'http.request.method': 'GET', 'http.route': '/api/summary', 'url.path': '/api/summary', 'http.response.status_code': 200, 'request.id': res.headers['x-request-id'] })
    t.equal(span?.status.code, SpanStatusCode.UNSET)
    t.equal(span?.parentSpanContext, undefined, 'no traceparent: a root span')
  })

  t.test('a W3C traceparent is the parent; the query string is not recorded', async (t) => {
    exporter.reset()
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const parentId = '00f067aa0ba902b7'
    const res = await fetch(`${base}/api/transactions?limit=5`, { headers: { cookie: client.cookie!, traceparent: `00-${traceId}-${parentId}-01` } })
    t.equal(res.status, 200)
    const span = serverSpans()[0] as ReadableSpan
    t.equal(span.spanContext().traceId, traceId)
    t.equal(span.parentSpanContext?.spanId, parentId)
    t.equal(span.name, 'GET /api/transactions')
    t.equal(span.attributes['url.path'], '/api/transactions')
    t.notMatch(JSON.stringify(span.attributes), /limit=5/)
  })

  t.test('probes, /metrics and static files: no span at all', async (t) => {
    exporter.reset()
    for (const path of ['/health', '/health/ready', '/metrics', '/assets/app.js', '/', '/health?x=1']) {
      t.equal((await fetch(base + path)).status, 200, path)
    }
    t.same(exporter.getFinishedSpans().map((s) => s.name), [])
    t.equal((await fetch(`${base}/no/such/route`)).status, 404)
    t.same(serverSpans().map((s) => [s.name, s.attributes['http.response.status_code']]), [['GET', 404]], 'a 404 is traced, named by its method alone')
  })

  t.test('every log line of a traced request carries its trace and span ids; untraced lines carry none', async (t) => {
    exporter.reset()
    logs.lines.length = 0
    const res = await http.get('/api/accounts')
    t.equal(res.status, 200)
    const span = serverSpans()[0] as ReadableSpan
    const lines = logs.of(res.headers['x-request-id'] as string)
    t.ok(lines.length >= 2, `incoming and completed at least (${lines.length} lines)`)
    for (const line of lines) {
      t.equal(line.trace_id, span.spanContext().traceId, `"${line.msg}" has the trace id`)
      t.match(line.span_id, /^[0-9a-f]{16}$/, `"${line.msg}" has a span id`)
      t.equal(line.trace_flags, '01')
    }
    t.ok(lines.some((l) => l.span_id === span.spanContext().spanId), 'the server span\'s own id on its lines')
    logs.lines.length = 0
    app.log.info('outside any request')
    t.notOk('trace_id' in (logs.lines[0] ?? {}), 'outside a request: no trace id')
  })
})

t.test('tracing off: no server span, no trace ids in the log lines', async (t) => {
  t.notOk(tracingStarted())
  const logs = new LogLines()
  const app = await hostileApp(t, { logs })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  exporter.reset()
  const res = await fetch(`${base}/api/auth/me`, { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } })
  const lines = logs.of(res.headers.get('x-request-id')!)
  t.ok(lines.length >= 2)
  for (const line of lines) t.notOk('trace_id' in line || 'span_id' in line, `"${line.msg}": no trace ids`)
  t.same(exporter.getFinishedSpans(), [])
})
