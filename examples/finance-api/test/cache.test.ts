import t from 'tap'
import { InsightsModel } from '../src/insights.js'
import { MarketClient } from '../src/market.js'
import { standalone } from './backends.js'
import { app } from './e2e-suite.js'
import { Client } from './helpers.js'
import { sleep } from '@headroom/testing'

// (the cross-instance behaviour of the cache, insights computed once and
// invalidation on every instance, runs in e2e-suite.ts on every Redis layout)

t.test('quotes: cached for seconds, and a failing provider gets the last quote served (stale-if-error)', async (t) => {
  const market = { latencyMs: 0, failureRate: 0 }
  const client = new MarketClient(market)
  const a = await app(t, standalone, { QUOTE_TTL_S: '1' }, { market: client })
  const c = new Client(a)
  await c.signup('quotes@example.com', 'long enough password')
  const first = await c.get('/api/quotes?symbols=AAPL,MSFT')
  t.equal(first.status, 200)
  t.equal(first.body.quotes.length, 2)
  await c.get('/api/quotes?symbols=AAPL,MSFT')
  t.equal(client.calls, 2, 'the second request was served from the cache')

  market.failureRate = 1
  await sleep(1100)
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
  const a = await app(t, standalone, {}, { insights })
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
