import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import t from 'tap'
import { loggerOptions, RequestLog, serviceIdentity } from '../src/logging.js'
import { MAX_REQUEST_ID_LENGTH, requestId } from '../src/request-id.js'
import { hostileApp } from './hostile.js'
import { LogLines, testApp } from '@headroom/testing'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`

t.test('an x-request-id is carried from the request to every log line of it, the response header and the error body', async (t) => {
  const logs = new LogLines()
  const app = await hostileApp(t, { logs })
  // (a 401 of the error handler: no session)
  const res = await app.inject({ url: '/api/transactions', headers: { 'x-request-id': 'edge-4711.a:b@c_d' } })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['x-request-id'], 'edge-4711.a:b@c_d', 'echoed in the response')
  t.equal(res.json().requestId, 'edge-4711.a:b@c_d', 'the error body names the same id')
  const lines = logs.of('edge-4711.a:b@c_d')
  t.ok(lines.some((l) => l.msg === 'incoming request'), 'the request line has it')
  t.ok(lines.some((l) => l.msg === 'request completed'), 'and the response line')
  for (const line of lines) t.match(line, { service: pkg.name, version: pkg.version, env: 'test' }, 'each line names the service, version, env')

  const ok = await app.inject({ url: '/health', headers: { 'x-request-id': 'probe-1' } })
  t.equal(ok.headers['x-request-id'], 'probe-1', 'a 200 echoes it too')
})

t.test('an invalid x-request-id is replaced; a traceparent gives its trace id', async (t) => {
  const logs = new LogLines()
  const app = await hostileApp(t, { logs })
  for (const bad of ['has space', 'quote"', 'x'.repeat(MAX_REQUEST_ID_LENGTH + 1), 'semi;colon', 'slash/path', '']) {
    const res = await app.inject({ url: '/health', headers: { 'x-request-id': bad } })
    t.match(res.headers['x-request-id'], /^req-[0-9a-f]{16}$/, `"${bad.slice(0, 20)}" replaced by a generated id`)
    t.notOk(logs.lines.some((l) => l.reqId === bad), 'and never logged as it came')
  }
  const traced = await app.inject({ url: '/api/transactions', headers: { traceparent: TRACEPARENT } })
  t.equal(traced.headers['x-request-id'], TRACE_ID, 'the W3C trace id is the request id')
  t.ok(logs.of(TRACE_ID).length > 0, 'and the log lines carry it')
  const both = await app.inject({ url: '/health', headers: { traceparent: TRACEPARENT, 'x-request-id': 'lb-1' } })
  t.equal(both.headers['x-request-id'], 'lb-1', 'x-request-id (the load balancer\'s) wins over traceparent')
  const zero = await app.inject({ url: '/health', headers: { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` } })
  t.match(zero.headers['x-request-id'], /^req-/, 'an all-zero trace id is invalid (W3C): a new id')
  const a = await app.inject({ url: '/health' })
  const b = await app.inject({ url: '/health' })
  t.not(a.headers['x-request-id'], b.headers['x-request-id'], 'generated ids differ')
})

t.test('requestId: the rules on their own', async (t) => {
  const of = (headers: Record<string, string | string[]>) => requestId({ headers } as unknown as IncomingMessage)
  t.equal(of({ 'x-request-id': '  padded  ' }), 'padded')
  t.match(of({ 'x-request-id': ['a', 'b'] }), /^req-/, 'a repeated header is not chosen between')
  t.equal(of({ 'x-request-id': 'x'.repeat(MAX_REQUEST_ID_LENGTH) }), 'x'.repeat(MAX_REQUEST_ID_LENGTH), 'the bound itself is accepted')
  t.match(of({ traceparent: `00-${TRACE_ID}-00f067aa0ba902b7` }), /^req-/, 'a truncated traceparent is ignored')
})

t.test('generated ids come from batched random bytes: all distinct and well-formed across several refills', async (t) => {
  const ids = Array.from({ length: 2000 }, () => requestId({ headers: {} } as unknown as IncomingMessage))
  t.equal(new Set(ids).size, ids.length, 'no id repeats, also across a refill of the batch')
  t.ok(ids.every((id) => /^req-[0-9a-f]{16}$/.test(id)), 'req- and 16 hex digits, as before')
})

t.test('loggerOptions: JSON off a terminal or in production, pino-pretty only for development on a terminal', async (t) => {
  const dev = serviceIdentity('development')
  t.same(Object.keys(loggerOptions('info', dev, false) as object).includes('transport'), false, 'development piped: JSON')
  t.same(Object.keys(loggerOptions('info', serviceIdentity('production'), true) as object).includes('transport'), false, 'production on a terminal: JSON')
  t.match(loggerOptions('info', dev, true), { transport: { target: 'pino-pretty' } }, 'development on a terminal: pretty')
  t.match(loggerOptions('info', dev, true), { base: { service: pkg.name, version: pkg.version, env: 'development' } })
})

t.test('pretty logs on a terminal: one line per request, method, path, status and time', async (t) => {
  const logs = new LogLines()
  const app = testApp(t, { logger: { level: 'info', stream: logs.stream }, logController: new RequestLog({ mode: 'all', slowMs: 1000, pretty: true }) })
  app.get('/x', async () => 'ok')
  await app.inject({ url: '/x?q=1' })
  const lines = logs.lines.filter((l) => l.reqId !== undefined)
  t.equal(lines.length, 1, `one line: ${JSON.stringify(lines)}`)
  t.match(lines[0]?.msg, /^GET \/x\?q=1 200 \d+\.\d ms$/)
})
