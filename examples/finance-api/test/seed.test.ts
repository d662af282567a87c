import { isolatedSchema } from '@headroom/testing'
import pg from 'pg'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'
import { SEED_PASSWORD, seed, seedEmail } from '../src/seed.js'
import { Client } from './helpers.js'

t.test('seed fills users, accounts and ~10 transactions each with COPY; seeded users log in; the app inserts after them', async (t) => {
  const { url } = await isolatedSchema(t)
  await migrate(url)
  t.same(await migrate(url), [], 'migrations are idempotent: a second run applies nothing')
  const progress: number[] = []
  const result = await seed(url, { users: 300, onProgress: (done, total) => progress.push(done / total) })
  t.equal(result.users, 300)
  t.ok(result.transactions >= 300 * 5 && result.transactions <= 300 * 16, `about ten transactions per user (${result.transactions})`)
  t.equal(progress.at(-1), 1, 'the progress reaches 100 %')

  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  const { rows: [counts] } = await client.query('SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM transactions)::int AS tx')
  t.same(counts, { users: 300, tx: result.transactions })

  // a second seed appends after the first: the ids it assigned do not collide
  const again = await seed(url, { users: 10, randomSeed: 7 })
  t.equal(again.firstUserId, 301)

  const app = await buildApp({ config: loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent' }), databaseUrl: url })
  t.teardown(() => app.close())
  const c = new Client(app)
  t.equal((await c.login(seedEmail(result.firstUserId + 17), SEED_PASSWORD)).status, 200)
  const summary = (await c.get('/api/summary')).body
  t.ok(summary.accounts.length >= 1)
  const page = await c.get('/api/transactions?limit=100')
  t.ok(page.body.items.length >= 3)
  // the sequences were moved past the seeded ids: a signup gets a fresh id
  const fresh = await new Client(app).signup('after-seed@example.com', 'long enough password')
  t.equal(fresh.status, 201)
  t.equal(fresh.body.user.id, '311')
})
