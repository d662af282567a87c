import { isolatedRedis, isolatedSchema, waitFor, type TestContext } from '@headroom/testing'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { InsightsModel } from '../src/insights.js'
import { MarketClient } from '../src/market.js'
import { migrate } from '../src/migrate.js'
import { Client } from './helpers.js'

/** Two instances of the app behind one imaginary load balancer: one database, one Redis. */
async function twoInstances (t: TestContext, shared: { insights?: InsightsModel, market?: MarketClient } = {}, env: Record<string, string> = {}) {
  const { url } = await isolatedSchema(t)
  const redis = await isolatedRedis(t)
  await migrate(url)
  const config = loadConfig({ DATABASE_URL: url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, LOG_LEVEL: 'silent', ...env })
  const apps = []
  for (let i = 0; i < 2; i++) {
    const app = await buildApp({ config, databaseUrl: url, ...shared })
    t.teardown(() => app.close())
    await app.ready()
    apps.push(app)
  }
  return apps as [typeof apps[0], typeof apps[0]]
}

t.test('insights are computed once across instances and served from the cache for the hour', async (t) => {
  const insights = new InsightsModel(300)
  const [a, b] = await twoInstances(t, { insights })
  const onA = new Client(a)
  await onA.signup('insightful@example.com', 'long enough password')
  const onB = new Client(b)
  await onB.login('insightful@example.com', 'long enough password')
  const account = (await onA.get('/api/accounts')).body.items[0].id
  await onA.post('/api/transactions', { accountId: account, amountCents: -5000, category: 'dining' })

  // ten concurrent requests on each instance, all cold
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? onA : onB).get('/api/insights')))
  t.same(replies.map((r) => r.status), Array(20).fill(200))
  t.equal(insights.calls, 1, 'one model call for 20 concurrent requests on two instances')
  t.equal(new Set(replies.map((r) => r.body.generatedAt)).size, 1, 'everyone got the same result')
  await onB.get('/api/insights')
  t.equal(insights.calls, 1, 'still cached')
})

t.test('a write on one instance invalidates the summary the other instance cached', async (t) => {
  const [a, b] = await twoInstances(t)
  const onA = new Client(a)
  await onA.signup('twice@example.com', 'long enough password')
  const onB = new Client(b)
  await onB.login('twice@example.com', 'long enough password')
  const account = (await onA.get('/api/accounts')).body.items[0].id
  t.equal((await onB.get('/api/summary')).body.netWorthCents, 0, 'B caches the empty summary')
  t.equal((await onA.post('/api/transactions', { accountId: account, amountCents: 12345, category: 'salary' })).status, 201)
  t.equal((await onA.get('/api/summary')).body.netWorthCents, 12345, 'the writing instance sees it at once')
  // B's L1 copy is dropped by the pub/sub message: milliseconds, not the TTL of a minute
  const started = Date.now()
  await waitFor('B to see the write', async () => (await onB.get('/api/summary')).body.netWorthCents === 12345, 1000, 5)
  t.ok(Date.now() - started < 1000, `B saw it after ${Date.now() - started} ms`)
})

t.test('quotes: cached for seconds, and a failing provider gets the last quote served (stale-if-error)', async (t) => {
  const market = { latencyMs: 0, failureRate: 0 }
  const client = new MarketClient(market)
  const [a] = await twoInstances(t, { market: client }, { QUOTE_TTL_S: '1' })
  const c = new Client(a)
  await c.signup('quotes@example.com', 'long enough password')
  const first = await c.get('/api/quotes?symbols=AAPL,MSFT')
  t.equal(first.status, 200)
  t.equal(first.body.quotes.length, 2)
  await c.get('/api/quotes?symbols=AAPL,MSFT')
  t.equal(client.calls, 2, 'the second request was served from the cache')

  market.failureRate = 1
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const stale = await c.get('/api/quotes?symbols=AAPL,MSFT')
  t.equal(stale.status, 200, 'the provider is down, the page is not')
  t.same(stale.body.quotes.map((q: { asOf: string }) => q.asOf), first.body.quotes.map((q: { asOf: string }) => q.asOf), 'the last good quotes')
  t.ok(client.failures >= 2, 'the provider was asked and failed')
  const none = await c.get('/api/quotes?symbols=NVDA')
  t.equal(none.status, 503, 'no quote ever fetched: 503, not a hang or a 500')
  t.equal(none.headers['retry-after'], '5')
})

t.test('a new user\'s empty insights are not kept for an hour: the first transactions get looked at', async (t) => {
  const insights = new InsightsModel(0)
  const [a] = await twoInstances(t, { insights })
  const c = new Client(a)
  await c.signup('newbie@example.com', 'long enough password')
  const empty = (await c.get('/api/insights')).body
  t.equal(empty.basedOn, 0)
  t.equal(insights.calls, 0, 'no model call for no data')
  const account = (await c.get('/api/accounts')).body.items[0].id
  await c.post('/api/transactions', { accountId: account, amountCents: -2500, category: 'dining' })
  const first = (await c.get('/api/insights')).body
  t.equal(first.basedOn, 1)
  t.equal(insights.calls, 1)
  await c.post('/api/transactions', { accountId: account, amountCents: -2500, category: 'dining' })
  t.equal((await c.get('/api/insights')).body.generatedAt, first.generatedAt, 'real insights stay for their hour')
  t.equal(insights.calls, 1)
})
