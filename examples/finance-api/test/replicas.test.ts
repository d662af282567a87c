import { isolatedRedis, startPostgres, startReplica } from '@headroom/testing'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'
import { Client } from './helpers.js'

function readsOn (metrics: string, target: string): number {
  let sum = 0
  for (const line of metrics.split('\n')) {
    if (line.startsWith('headroom_pool_reads_total{') && line.includes(`target="${target}"`)) sum += Number(line.split(' ').pop())
  }
  return sum
}

t.test('with DATABASE_REPLICA_URLS reads go to the replica, and a user reads their own writes at once', async (t) => {
  const primary = await startPostgres(t)
  const replica = await startReplica(t, primary)
  const redis = await isolatedRedis(t)
  await migrate(primary.url)
  await replica.caughtUp()
  const app = await buildApp({
    config: loadConfig({
      DATABASE_URL: primary.url, DATABASE_REPLICA_URLS: replica.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, LOG_LEVEL: 'silent'
    }),
    databaseUrl: primary.url
  })
  t.teardown(() => app.close())
  await app.ready()

  const c = new Client(app)
  await c.signup('replicated@example.com', 'long enough password')
  const account = (await c.get('/api/accounts')).body.items[0].id
  let expected = 0
  for (let i = 1; i <= 20; i++) {
    const amountCents = i * 100
    expected += amountCents
    t.equal((await c.post('/api/transactions', { accountId: account, amountCents, category: 'misc' })).status, 201)
    // the next request of the same session: never behind its own write, replica or not
    const summary = (await c.get('/api/summary')).body
    if (summary.netWorthCents !== expected) t.fail(`write ${i}: summary shows ${summary.netWorthCents}, expected ${expected}`)
    const page = (await c.get('/api/transactions?limit=1')).body
    if (page.items[0]?.amountCents !== amountCents) t.fail(`write ${i}: newest transaction is ${page.items[0]?.amountCents}`)
  }
  t.equal((await c.get('/api/summary')).body.netWorthCents, expected)
  const metrics = (await app.inject('/metrics')).body
  t.ok(readsOn(metrics, 'replica') > 0, `reads ran on the replica (${readsOn(metrics, 'replica')} replica, ${readsOn(metrics, 'primary')} primary)`)
})
