/**
 * Error tracking: one report per 5xx, none for a 4xx, nothing personal in a
 * report (cookie, email, password, body, SQL values), the trace id when
 * tracing is on; unhandled rejections reported, flushed, then the exit;
 * ERROR_REPORTER loads a module's factory.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node'
import { SpanKind } from '@opentelemetry/api'
import Fastify from 'fastify'
import t from 'tap'
import { ErrorReporting, loadErrorReporter, onUnhandledRejection, reportableError, type ErrorReport, type ErrorReporter } from '../src/error-reporting.js'
import { InsightsModel, type Insights } from '../src/insights.js'
import { serviceIdentity } from '../src/logging.js'
import { startTracing, stopTracing } from '../src/tracing.js'
import { hostileApp, user } from './hostile.js'
import { LogLines } from '@headroom/testing'

class Collecting implements ErrorReporter {
  readonly reports: ErrorReport[] = []
  flushed = 0
  report (r: ErrorReport) { this.reports.push(r) }
  async flush () { this.flushed++ }
}

/** the model failing the way a careless one would: the user's address in its message */
class FailingInsights extends InsightsModel {
  override async generate (): Promise<Insights> {
    throw new Error('the model refused the input of report-me@example.com')
  }
}

const EMAIL = 'report-me@example.com'
const PASSWORD = 'long enough password'
const identity = serviceIdentity('test')

t.test('one report per 5xx with request id, route, status and trace id; none for a 4xx; nothing personal', async (t) => {
  const exporter = new InMemorySpanExporter()
  await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }, { ...identity, exporter })
  t.teardown(stopTracing)
  const reporter = new Collecting()
  const app = await hostileApp(t, {
    extra: { errorReporter: reporter, insights: new FailingInsights(0) },
    routes (app) {
      // a real PostgreSQL error quoting the value it refused
      app.post('/test/sql-value', async (request) => (await app.db.query('SELECT $1::int', [(request.body as { v: string }).v])).rows)
    }
  })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const { client } = await user(app, EMAIL)
  const cookie = client.cookie!
  const csrf = client.csrfToken!

  const res = await fetch(`${base}/api/insights`, { headers: { cookie, authorization: 'Bearer secret-token-value' } })
  t.equal(res.status, 500)
  const body = await res.json() as { requestId: string }
  t.equal(reporter.reports.length, 1, 'one report')
  const [report] = reporter.reports
  const server = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER && s.attributes['request.id'] === body.requestId)
  t.match(report, { kind: 'request', requestId: body.requestId, method: 'GET', route: '/api/insights', statusCode: 500 })
  t.match(report, { service: identity.service, version: identity.version, env: 'development', traceId: server?.spanContext().traceId })
  t.match(report?.error.message, /the model refused the input of \[email\]/, 'the message, the address masked')
  t.match(report?.error.stack, /FailingInsights\.generate/, 'the stack')

  const sql = await fetch(`${base}/test/sql-value`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ v: 'secret-42-value' }) })
  t.equal(sql.status, 500)
  t.equal(reporter.reports.length, 2, 'one more report')
  t.match(reporter.reports[1]?.error.message, /^PostgreSQL error SQLSTATE 22P02$/, 'PostgreSQL\'s message (which quotes the value) replaced by its SQLSTATE')

  const text = JSON.stringify(reporter.reports.map((r) => ({ ...r, error: { name: r.error.name, message: r.error.message, stack: r.error.stack, code: r.error.code } })))
  for (const secret of [EMAIL, PASSWORD, cookie, cookie.split('=')[1]!, csrf, 'secret-token-value', 'secret-42-value']) {
    t.notOk(text.includes(secret), `no ${secret.slice(0, 12)}… in the reports`)
  }
  t.notMatch(text, /cookie|authorization|"body"|headers/i, 'no headers or body fields')

  // 4xx: bad input, unauthenticated, unknown route, not reported
  t.equal((await fetch(`${base}/api/accounts`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: '{"name":1}' })).status, 400)
  t.equal((await fetch(`${base}/api/insights`)).status, 401)
  t.equal((await fetch(`${base}/nope`)).status, 404)
  t.equal(reporter.reports.length, 2, 'no report for a 4xx')
})

t.test('a reporter that throws fails nothing; ERROR_REPORTER unset reports nothing', async (t) => {
  const app = await hostileApp(t, { extra: { errorReporter: { report () { throw new Error('reporter down') } }, insights: new FailingInsights(0) } })
  const { client } = await user(app, 'throwing-reporter@example.com')
  t.equal((await client.get('/api/insights')).status, 500, 'still the 500, not a crash')
  t.equal(await loadErrorReporter(undefined, identity), undefined)
  t.equal(await loadErrorReporter(' ', identity), undefined)
})

t.test('ERROR_REPORTER names a module whose default export builds the reporter', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'headroom-test-reporter-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'reporter.mjs'), 'export default (identity) => ({ identity, report () {} })\n')
  await writeFile(join(dir, 'bad.mjs'), 'export const report = () => {}\n')
  const reporter = await loadErrorReporter(join(dir, 'reporter.mjs'), identity) as ErrorReporter & { identity: unknown }
  t.same(reporter.identity, identity, 'the factory gets the service identity')
  await t.rejects(loadErrorReporter(join(dir, 'bad.mjs'), identity), /has no default export of a function/)
  await t.rejects(loadErrorReporter(join(dir, 'missing.mjs'), identity), /Cannot find module/)
})

t.test('an unhandled rejection: reported once, flushed, logged, then exit 1', async (t) => {
  const reporter = new Collecting()
  const logs = new LogLines()
  const log = Fastify({ logger: { level: 'info', stream: logs.stream } }).log
  const reporting = new ErrorReporting(reporter, identity, log)
  const exits: number[] = []
  const listener = onUnhandledRejection(reporting, log, (code) => exits.push(code))
  const err = Object.assign(new Error('relation missing'), { code: '42P01', routine: 'parserOpenTable' })
  await listener(err)
  t.equal(reporter.reports.length, 1)
  t.match(reporter.reports[0], { kind: 'unhandledRejection', service: identity.service, error: { message: 'PostgreSQL error SQLSTATE 42P01', code: '42P01' } })
  t.equal(reporter.flushed, 1, 'flushed before the exit')
  t.same(exits, [1])
  t.match(logs.lines, [{ level: 60, msg: 'unhandled promise rejection: exiting' }])
  t.match(reportableError('plain string').message, /non-error thrown: string/)
})

const SENTRY_EXAMPLE = new URL('./sentry-reporter.example.ts', import.meta.url)

t.test('the README\'s Sentry reporter is this file, and works: the 5xx reaches a Sentry-compatible endpoint with request id, route and trace, nothing personal', async (t) => {
  const code = await readFile(SENTRY_EXAMPLE, 'utf8')
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  t.ok(readme.includes('```ts\n' + code + '```'), 'the README shows test/sentry-reporter.example.ts as it is (typechecked with the tests)')

  // a Sentry-compatible ingest endpoint: envelopes arrive at /api/<project>/envelope/
  const envelopes: Array<{ path: string, body: string }> = []
  const ingest = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      envelopes.push({ path: req.url ?? '', body: (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8') })
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => ingest.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => ingest.close(resolve)))
  process.env.SENTRY_DSN = `http://publickey@127.0.0.1:${(ingest.address() as AddressInfo).port}/1`
  t.teardown(() => { delete process.env.SENTRY_DSN })

  const exporter = new InMemorySpanExporter()
  await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }, { ...identity, exporter })
  t.teardown(stopTracing)
  const reporter = await loadErrorReporter(fileURLToPath(SENTRY_EXAMPLE), identity)
  const app = await hostileApp(t, { extra: { errorReporter: reporter, insights: new FailingInsights(0) } })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const { client } = await user(app, EMAIL)
  const res = await fetch(`${base}/api/insights`, { headers: { cookie: client.cookie! } })
  t.equal(res.status, 500)
  const { requestId } = await res.json() as { requestId: string }
  await reporter?.flush?.(5000)
  const sent = envelopes.find((e) => e.body.includes(requestId))
  t.ok(sent, `an envelope with the request id (${envelopes.length} received)`)
  t.match(sent?.path, /^\/api\/1\/envelope\//)
  const event = JSON.parse(sent?.body.split('\n').find((l) => l.includes('"exception"')) ?? '{}')
  const traceId = exporter.getFinishedSpans().find((s) => s.attributes['request.id'] === requestId)?.spanContext().traceId
  t.match(event, { tags: { kind: 'request', request_id: requestId, route: 'GET /api/insights', status_code: 500 }, contexts: { trace: { trace_id: traceId } } })
  t.match(event.exception?.values?.[0], { type: 'Error', value: 'the model refused the input of [email]' })
  t.match(event, { release: `${identity.service}@${identity.version}` })
  for (const secret of [EMAIL, client.cookie!, client.cookie!.split('=')[1]!, PASSWORD]) t.notOk(sent?.body.includes(secret), `no ${secret.slice(0, 12)}… in what Sentry received`)
})
