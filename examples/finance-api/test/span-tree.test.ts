/**
 * One request to the summary, traced end to end through the plugins' spans:
 * the HTTP server span (the example's), under it the session load from Redis
 * (@headroom/session) and the cache read (@headroom/cache), under the cache
 * read the pool's query spans (@headroom/pool), the rate-limit decision on the
 * server span (@headroom/ratelimit). Then the same read from L1 (no query),
 * and no span carrying a user's id, email, session id or cookie.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node'
import t from 'tap'
import { startTracing, stopTracing } from '../src/tracing.js'
import { Client } from './helpers.js'
import { hostileApp, user } from './hostile.js'

const exporter = new InMemorySpanExporter()

function strings (spans: ReadableSpan[]): string[] {
  return spans.flatMap((s) => [s.name, s.status.message ?? '', ...Object.values(s.attributes).map(String),
    ...s.events.flatMap((e) => [e.name, ...Object.values(e.attributes ?? {}).map(String)])])
}

t.test('the span tree of one summary read: HTTP → session load, cache read → pool queries', async (t) => {
  t.ok(await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }, { service: 'finance-api', version: '0.0.0', env: 'test', exporter }))
  t.teardown(stopTracing)
  const app = await hostileApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const email = 'span.tree@example.com'
  const signedUp = await user(app, email)
  const http = new Client(base)
  http.cookie = signedUp.client.cookie
  http.csrfToken = signedUp.client.csrfToken
  const sessionId = decodeURIComponent(/sessionId=([^;]+)/.exec(http.cookie ?? '')?.[1] ?? '').split('.')[0] as string
  t.ok(sessionId.length > 10, 'the session id, to look for in spans')
  // a write before the read: the summary is computed, not served from the cache
  t.equal((await http.post('/api/transactions', { accountId: signedUp.account, amountCents: -1234, category: 'groceries' })).status, 201)

  exporter.reset()
  const res = await http.get('/api/summary')
  t.equal(res.status, 200)
  const spans = exporter.getFinishedSpans()
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]))
  const parent = (s: ReadableSpan) => s.parentSpanContext === undefined ? undefined : byId.get(s.parentSpanContext.spanId)
  const one = (name: string) => {
    const found = spans.filter((s) => s.name === name)
    t.equal(found.length, 1, `one ${name} span (${spans.map((s) => s.name).join(', ')})`)
    return found[0] as ReadableSpan
  }

  const server = one('GET /api/summary')
  t.equal(server.kind, SpanKind.SERVER)
  t.equal(parent(server), undefined, 'the server span is the root')
  t.equal(server.attributes['http.route'], '/api/summary')
  t.equal(server.attributes['request.id'], res.headers['x-request-id'])
  t.match(server.attributes, { 'headroom.ratelimit.decision': 'allowed', 'headroom.ratelimit.store': 'redis' }, 'the rate-limit decision on the server span')
  t.type(server.attributes['headroom.ratelimit.remaining'], 'number')

  const load = one('session.load')
  t.equal(parent(load), server, 'the session load is a child of the server span')
  // `hot`: served from this instance's hot sessions (read once from Redis since the login)
  t.match(load.attributes, { 'headroom.session.source': /^(redis|hot)$/, 'headroom.session.found': true, 'headroom.session.fallback': false })

  const read = one('cache.wrap')
  t.equal(parent(read), server, 'the cache read is a child of the server span')
  t.match(read.attributes, { 'headroom.cache.namespace': 'summary', 'headroom.cache.per_user': true, 'headroom.cache.tier': 'miss', 'headroom.cache.coalesced': false })

  const queries = spans.filter((s) => s.attributes['db.system.name'] === 'postgresql')
  t.ok(queries.length >= 1, `${queries.length} query spans`)
  for (const q of queries) {
    t.equal(q.kind, SpanKind.CLIENT)
    t.equal(parent(q), read, `${q.name}: a child of the cache read (its factory)`)
    t.match(q.attributes, { 'db.operation.name': /^(SELECT|WITH)$/, 'headroom.pool.role': 'primary', 'db.client.connection.pool.name': 'primary' })
    t.type(q.attributes['headroom.pool.acquire_wait_ms'], 'number')
    t.type(q.attributes['db.query.text'], 'string')
    t.equal(q.status.code, SpanStatusCode.UNSET)
  }
  t.same(spans.filter((s) => s !== server && parent(s) === undefined).map((s) => s.name), [], 'no other root span: everything hangs off the request')
  t.same(new Set(spans.map((s) => s.spanContext().traceId)).size, 1, 'one trace')

  // the same read again: from L1, no query
  exporter.reset()
  t.equal((await http.get('/api/summary')).status, 200)
  const again = exporter.getFinishedSpans()
  t.match(again.find((s) => s.name === 'cache.wrap')?.attributes, { 'headroom.cache.tier': 'l1' }, 'the second read is an L1 hit')
  t.same(again.filter((s) => s.attributes['db.system.name'] === 'postgresql').map((s) => s.name), [], 'and sends no query')

  // no personal data anywhere in either request's spans
  const all = strings([...spans, ...again])
  // (the user's id is a small number here, which timings contain by chance: the queries' text, checked
  // above to be a string, has its parameters as $n and never a value, as @headroom/pool's tests show)
  for (const secret of [email, sessionId, 'span.tree', '-1234']) {
    t.notOk(all.some((s) => s.includes(secret)), `no span carries ${secret}`)
  }
})
