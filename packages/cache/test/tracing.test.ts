import t from 'tap'
import { SpanStatusCode } from '@opentelemetry/api'
import { inMemoryTracing } from '@headroom/testing/tracing'
import type { Namespace, UserNamespace } from '../src/index.js'
import { standalone } from './backends.js'
import { sleep } from '@headroom/testing'
import { buildApp, engineOf } from './helpers.js'

// a real SDK in this process only: spans exported to memory
const tracing = inMemoryTracing()
t.teardown(() => tracing.shutdown())
t.beforeEach(() => tracing.reset())

const USER = 'user-80412'

t.test('cache.wrap: a span per read with namespace and tier, the factory\'s work as its child, never the key', async (t) => {
  const r = await standalone.connect(t)
  const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix, namespaces: { quotes: { ttl: 60_000 } } })
  const quotes = app.cache.ns('quotes') as Namespace
  const factory = () => tracing.inSpan('factory', async () => ({ price: 42 }))
  await tracing.inSpan('request', async () => {
    await quotes.wrap('isin-DE0001', factory)
    await quotes.wrap('isin-DE0001', factory)
    engineOf(app).l1.clear()
    await quotes.wrap('isin-DE0001', factory)
  })
  const [miss, l1, l2] = tracing.named('cache.wrap')
  t.match(miss!.attributes, { 'headroom.cache.namespace': 'quotes', 'headroom.cache.tier': 'miss', 'headroom.cache.coalesced': false, 'headroom.cache.per_user': false })
  t.equal(l1!.attributes['headroom.cache.tier'], 'l1')
  t.equal(l2!.attributes['headroom.cache.tier'], 'l2')
  t.equal(tracing.parentOf(miss!)?.name, 'request')
  const factorySpans = tracing.named('factory')
  t.equal(factorySpans.length, 1, 'the factory ran once')
  t.equal(tracing.parentOf(factorySpans[0]!), miss, 'its work is a child of the read that ran it')
  t.notOk(tracing.strings().some((s) => s.includes('DE0001')), 'no span carries the key')
})

t.test('a read that joins another\'s flight says so; a per-user read carries no user', async (t) => {
  const r = await standalone.connect(t)
  const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix, namespaces: { portfolio: { perUser: true } } })
  const portfolio = (app.cache.ns('portfolio') as UserNamespace).forUser(USER)
  const factory = async () => { await sleep(30); return { total: 1 } }
  await tracing.inSpan('request', () => Promise.all([portfolio.wrap(`summary-${USER}`, factory), portfolio.wrap(`summary-${USER}`, factory)]))
  const [first, second] = tracing.named('cache.wrap')
  t.equal(first!.attributes['headroom.cache.coalesced'], false)
  t.equal(second!.attributes['headroom.cache.coalesced'], true, 'the second joined the first one\'s flight')
  t.equal(second!.attributes['headroom.cache.tier'], 'miss')
  t.equal(second!.attributes['headroom.cache.per_user'], true)
  t.notOk(tracing.strings().some((s) => s.includes(USER)), 'no span carries the user')
})

t.test('stale and failed reads; cache.get', async (t) => {
  const r = await standalone.connect(t)
  const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix, namespaces: { rates: { ttl: 50, staleWhileRevalidate: 60_000 } } })
  const rates = app.cache.ns('rates') as Namespace
  await tracing.inSpan('request', async () => {
    await rates.wrap('eur', async () => 1.1)
    await sleep(80)
    t.equal(await rates.wrap('eur', async () => 1.2), 1.1, 'the stale value answers')
    await t.rejects(rates.wrap('usd', async () => { throw Object.assign(new Error('upstream down'), { code: 'UPSTREAM' }) }))
    t.equal(await rates.get('gbp'), undefined)
  })
  const [, stale, failed] = tracing.named('cache.wrap')
  t.equal(stale!.attributes['headroom.cache.tier'], 'stale')
  t.equal(failed!.status.code, SpanStatusCode.ERROR)
  t.equal(failed!.attributes['error.type'], 'UPSTREAM')
  t.notOk(tracing.strings().some((s) => s.includes('upstream down')), 'not the error message')
  t.match(tracing.named('cache.get')[0]!.attributes, { 'headroom.cache.namespace': 'rates', 'headroom.cache.tier': 'miss' })
})

t.test('outside a recording span (no traced request or job), reads make no span', async (t) => {
  const app = await buildApp(t, { namespaces: { quotes: {} } })
  const quotes = app.cache.ns('quotes') as Namespace
  await quotes.wrap('k', async () => 1)
  await quotes.get('k')
  t.same(tracing.spans().map((s) => s.name), [], 'no root spans of the cache\'s own')
})

t.test('a cached route annotates the request span: miss, then l1', async (t) => {
  const r = await standalone.connect(t)
  const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix }, (app) => {
    app.get('/accounts/:id', { config: { cache: true } }, async () => ({ balance: 10 }))
  })
  for (let i = 0; i < 2; i++) {
    await tracing.inSpan(`request-${i}`, async () => {
      t.equal((await app.inject(`/accounts/${USER}`)).statusCode, 200)
    })
  }
  t.match(tracing.named('request-0')[0]!.attributes, { 'headroom.cache.namespace': 'http', 'headroom.cache.tier': 'miss', 'headroom.cache.coalesced': false })
  t.match(tracing.named('request-1')[0]!.attributes, { 'headroom.cache.tier': 'l1' })
  t.notOk(tracing.strings().some((s) => s.includes(USER)), 'the URL (the key) is not on the span')
})
