import { isolatedSchema, startRedis, waitFor } from '@headroom/testing'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'
import { Client } from './helpers.js'

/**
 * The composition under a Redis crash: sessions fall back to memory, rate
 * limits to the local limiter, the cache to L1 and the database. A user in
 * the middle of their session notices nothing but, at worst, a slow request.
 */
t.test('Redis killed while a logged-in user keeps working: no 5xx, bounded latency, readiness warns, recovery by itself', async (t) => {
  const { url } = await isolatedSchema(t)
  const redis = await startRedis(t)
  await migrate(url)
  const app = await buildApp({ config: loadConfig({ DATABASE_URL: url, REDIS_URL: redis.url, LOG_LEVEL: 'silent', MARKET_LATENCY_MS: '0', INSIGHTS_COST_MS: '0' }), databaseUrl: url })
  t.teardown(() => app.close())
  await app.ready()

  const c = new Client(app)
  await c.signup('through-the-storm@example.com', 'long enough password')
  const account = (await c.get('/api/accounts')).body.items[0].id
  t.equal((await c.get('/api/summary')).status, 200)

  await redis.kill()
  t.equal((await c.get('/api/summary')).status, 200, 'the session in use keeps working (this instance remembers recently used sessions)')
  // a crash without persistence loses every key: only what is written during
  // the outage can come back. Log in again while Redis is down: that session
  // lives in this instance's memory and is written back on recovery.
  t.equal((await c.login('through-the-storm@example.com', 'long enough password')).status, 200, 'login works while Redis is down')
  const statuses: number[] = []
  let slowest = 0
  let expected = 0
  for (let i = 1; i <= 30; i++) {
    const started = performance.now()
    const write = await c.post('/api/transactions', { accountId: account, amountCents: i, category: 'misc' })
    expected += i
    const read = await c.get('/api/summary')
    slowest = Math.max(slowest, performance.now() - started)
    statuses.push(write.status, read.status)
    if (read.body.netWorthCents !== expected) t.fail(`request ${i}: summary ${read.body.netWorthCents}, expected ${expected}`)
  }
  t.same(statuses.filter((s) => s >= 500), [], 'no 5xx while Redis is down')
  t.same([...new Set(statuses)].sort(), [200, 201], 'every write and read succeeded, the session included')
  // each plugin bounds its Redis commands by 250 ms; a write and a read that both hit fresh timeouts stay well under this
  t.ok(slowest < 1500, `slowest write + read pair ${Math.round(slowest)} ms`)
  await app.health.runChecks()
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200, 'still ready: degraded is not down')
  t.equal(ready.json().status, 'warn', 'but visibly degraded')

  await redis.start()
  await waitFor('readiness to pass again', async () => {
    await app.health.runChecks()
    return (await app.inject('/health/ready')).json().status === 'pass'
  }, 15_000, 200)
  const after = await c.get('/api/summary')
  t.equal(after.status, 200, 'the session made during the outage survived it')
  t.equal(after.body.netWorthCents, expected, 'and sees every write')
})
