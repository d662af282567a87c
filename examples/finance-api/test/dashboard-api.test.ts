import t from 'tap'
import { hostileApp, user } from './hostile.js'

const DAY_MS = 86_400_000
const daysAgo = (n: number) => new Date(Date.now() - n * DAY_MS).toISOString()
const utcDate = (n: number) => daysAgo(n).slice(0, 10)

/** The two routes the dashboard's charts and edit form use. */
t.test('dashboard API', async (t) => {
  const app = await hostileApp(t)
  const { client: c, account } = await user(app, 'charts@example.com', 'Charts')
  const other = await user(app, 'other-charts@example.com', 'Other')
  const add = async (amountCents: number, category: string, occurredAt: string) => {
    const res = await c.post('/api/transactions', { accountId: account, amountCents, category, occurredAt })
    t.equal(res.status, 201, JSON.stringify(res.body))
    return res.body.id as string
  }
  await add(500_00, 'salary', daysAgo(100))
  await add(-20_00, 'groceries', daysAgo(10))
  await add(-5_00, 'coffee', daysAgo(3))
  await add(-7_00, 'groceries', daysAgo(3))
  await add(-1_00, 'future', new Date(Date.now() + 5 * DAY_MS).toISOString())
  await other.client.post('/api/transactions', { accountId: other.account, amountCents: -999_00, category: 'groceries' })

  t.test('/api/trends: spending by category and the end-of-day balance of each UTC day of the period', async (t) => {
    const res = await c.get('/api/trends?days=30')
    t.equal(res.status, 200, JSON.stringify(res.body))
    t.equal(res.headers['cache-control'], 'private, no-store')
    t.same(res.body.byCategory, [{ category: 'groceries', spentCents: 27_00 }, { category: 'coffee', spentCents: 5_00 }],
      'largest first; the other user\'s, the older and the future-dated spending are not in it')
    const balance = res.body.balance as Array<{ date: string, balanceCents: number }>
    t.equal(balance.length, 30, 'one point a day, today included')
    t.equal(balance[0]!.date, utcDate(29))
    t.equal(balance.at(-1)!.date, utcDate(0))
    t.equal(balance[0]!.balanceCents, 500_00, 'the period opens with what came before it')
    t.equal(balance.find((p) => p.date === utcDate(10))!.balanceCents, 480_00)
    t.equal(balance.find((p) => p.date === utcDate(3))!.balanceCents, 468_00)
    t.equal(balance.at(-1)!.balanceCents, 468_00, 'a future-dated transaction is not in the past balance')

    const week = await c.get('/api/trends')
    t.equal(week.body.days, 30, '30 days by default')
    const short = await c.get('/api/trends?days=7')
    t.same(short.body.byCategory, [{ category: 'groceries', spentCents: 7_00 }, { category: 'coffee', spentCents: 5_00 }])
  })

  t.test('/api/trends refuses a period out of range with a message, and a stranger', async (t) => {
    for (const q of ['days=6', 'days=367', 'days=abc', 'days=30&days=31']) {
      const res = await c.get('/api/trends?' + q)
      t.equal(res.status, 400, `${q}: ${JSON.stringify(res.body)}`)
      t.type(res.body.message, 'string')
    }
    const anonymous = await app.inject({ method: 'GET', url: '/api/trends' })
    t.equal(anonymous.statusCode, 401)
  })

  t.test('PATCH /api/transactions/:id edits the fields sent and the summary sees it at once', async (t) => {
    const id = await add(-3_00, 'Snacks', daysAgo(1))
    t.equal((await c.get('/api/summary')).body.last30Days.spentCents, 36_00, 'the summary is cached now (the future-dated 1.00 is in its last 30 days)')
    const res = await c.request('PATCH', `/api/transactions/${id}`, { amountCents: -4_50, category: 'Treats' })
    t.equal(res.status, 200, JSON.stringify(res.body))
    t.match(res.body, { id, amountCents: -4_50, category: 'treats', description: '' })
    t.equal((await c.get('/api/summary')).body.last30Days.spentCents, 37_50, 'the cached summary was invalidated')
    const listed = (await c.get('/api/transactions?limit=100')).body.items.find((x: { id: string }) => x.id === id)
    t.match(listed, { amountCents: -4_50, category: 'treats' })
    const described = await c.request('PATCH', `/api/transactions/${id}`, { description: '  corner shop ' })
    t.match(described.body, { amountCents: -4_50, category: 'treats', description: 'corner shop' }, 'what is not sent is kept')
  })

  t.test('PATCH refuses what POST refuses, an empty change, and another user\'s transaction', async (t) => {
    const id = await add(-2_00, 'misc', daysAgo(1))
    const bad: Array<[unknown, RegExp]> = [
      [{ amountCents: 0 }, /amountCents must not be 0/],
      [{ amountCents: '5' }, /amountCents/],
      [{ category: '' }, /category/],
      [{ category: null }, /category/],
      [{ description: 'x'.repeat(201) }, /description/],
      [{ occurredAt: '2026-02-30T00:00:00Z' }, /RFC 3339/],
      [{}, /at least one/],
      [{ accountId: account }, /at least one/]
    ]
    for (const [body, message] of bad) {
      const res = await c.request('PATCH', `/api/transactions/${id}`, body)
      t.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`)
      t.match(res.body.message, message)
    }
    t.equal((await c.request('PATCH', '/api/transactions/x1', { category: 'a' })).status, 400, 'an id that is not one')
    const stranger = await other.client.request('PATCH', `/api/transactions/${id}`, { amountCents: -1 })
    t.equal(stranger.status, 404, 'not theirs: the same answer as a missing one')
    t.equal((await c.request('PATCH', '/api/transactions/999999999', { amountCents: -1 })).status, 404)
    const noCsrf = await app.inject({ method: 'PATCH', url: `/api/transactions/${id}`, headers: { cookie: c.cookie! }, payload: { amountCents: -1 } })
    t.equal(noCsrf.statusCode, 403)
    const mine = (await c.get('/api/transactions?limit=100')).body.items.find((x: { id: string }) => x.id === id)
    t.equal(mine.amountCents, -2_00, 'nothing refused was stored')
  })
})
