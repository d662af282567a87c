import { isolatedSchema, waitFor, type TestContext } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type AppOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'
import type { BackendFactory, RedisBackend } from './backends.js'
import { InsightsModel } from '../src/insights.js'
import { Client } from './helpers.js'

type Extra = Omit<AppOptions, 'config' | 'databaseUrl'>

/**
 * `count` instances of the app behind one imaginary load balancer: the
 * shared PostgreSQL (a schema of their own) and the backend's Redis.
 */
export async function instances (t: TestContext, backend: BackendFactory | RedisBackend, count: number, env: Record<string, string> = {}, extra: Extra = {}) {
  const { url } = await isolatedSchema(t)
  const redis = typeof backend === 'function' ? await backend(t) : backend
  await migrate(url)
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', MARKET_LATENCY_MS: '0', INSIGHTS_COST_MS: '0', ...redis.env, ...env })
  const apps: FastifyInstance[] = []
  for (let i = 0; i < count; i++) {
    const app = await buildApp({ config, databaseUrl: url, ...extra })
    t.teardown(() => app.close())
    await app.ready()
    apps.push(app)
  }
  return apps
}

/** One instance of the app. */
export async function app (t: TestContext, backend: BackendFactory | RedisBackend, env: Record<string, string> = {}, extra: Extra = {}) {
  return (await instances(t, backend, 1, env, extra))[0] as FastifyInstance
}

/** SQL statements run so far, from @headroom/pool's duration histogram. */
async function queriesRun (server: Awaited<ReturnType<typeof app>>): Promise<number> {
  const text = (await server.inject('/metrics')).body
  // (the readiness check's SELECT 1 runs on its own clock: not counted)
  return text.split('\n').filter((l) => l.startsWith('headroom_pool_query_duration_seconds_count') && !l.includes('health'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
}

/**
 * The end-to-end behaviour of the composed app, run once per Redis layout:
 * e2e.test.ts (one standalone Redis), e2e-split.test.ts (sessions and the
 * cache on different Redis servers), e2e-cluster.test.ts (a Redis Cluster).
 */
export function e2eSuite (t: Test, backend: BackendFactory): void {
  t.test('signup → login → transactions → the summary reflects them at once → logout; another user never sees them', async (t) => {
    const server = await app(t, backend)
    const ada = new Client(server)
    t.equal((await ada.signup('ada@example.com', 'ada password 1', 'Ada')).status, 201)
    const anonymous = new Client(server)
    const before = ada.cookie
    t.equal((await ada.login('ada@example.com', 'ada password 1')).status, 200)
    t.not(ada.cookie, before, 'the session id changes on login')
    t.equal((await anonymous.login('ada@example.com', 'wrong password')).status, 401)

    const accounts = (await ada.get('/api/accounts')).body.items
    const checking = accounts[0].id
    const first = await ada.get('/api/summary')
    t.equal(first.body.netWorthCents, 0)

    for (const [amountCents, category] of [[300000, 'salary'], [-4550, 'groceries'], [-120000, 'rent']] as const) {
      const res = await ada.post('/api/transactions', { accountId: checking, amountCents, category, description: 'x' })
      t.equal(res.status, 201, `created ${category}`)
      // read right after each write: a cached summary would be one write behind
      const s = await ada.get('/api/summary')
      t.equal(s.body.accounts[0].transactions, [300000, -4550, -120000].indexOf(amountCents) + 1)
    }
    const summary = (await ada.get('/api/summary')).body
    t.equal(summary.netWorthCents, 300000 - 4550 - 120000)
    // and it is cached: reading it again costs no query (so "at once" above is the invalidation at work)
    const queries = await queriesRun(server)
    t.ok(queries > 0, 'the pool counts the queries it ran')
    t.same((await ada.get('/api/summary')).body, summary)
    t.equal(await queriesRun(server), queries, 'a repeated summary read runs no query')
    t.equal(summary.last30Days.spentCents, 124550)
    t.same(summary.last30Days.byCategory.map((c: { category: string }) => c.category), ['rent', 'groceries'])

    // another user: own empty world, and Ada's account cannot be written to
    const bob = new Client(server)
    await bob.signup('bob@example.com', 'bob password 1', 'Bob')
    t.equal((await bob.get('/api/summary')).body.netWorthCents, 0)
    t.same((await bob.get('/api/transactions')).body.items, [])
    const steal = await bob.post('/api/transactions', { accountId: checking, amountCents: -1, category: 'theft' })
    t.equal(steal.status, 404, 'another user\'s account is not found')
    t.equal((await ada.get('/api/summary')).body.netWorthCents, 300000 - 4550 - 120000)

    // writes need the CSRF token; a wrong one is refused
    const token = ada.csrfToken
    ada.csrfToken = 'forged'
    t.equal((await ada.post('/api/transactions', { accountId: checking, amountCents: -1, category: 'x' })).status, 403)
    ada.csrfToken = token

    const cookie = ada.cookie
    t.equal((await ada.post('/api/auth/logout')).status, 204)
    ada.cookie = cookie
    t.equal((await ada.get('/api/summary')).status, 401, 'the old cookie is dead after logout')
  })

  t.test('keyset pagination walks every transaction once, newest first', async (t) => {
    const server = await app(t, backend)
    const c = new Client(server)
    await c.signup('pager@example.com', 'pager password')
    const account = (await c.get('/api/accounts')).body.items[0].id
    const base = Date.parse('2026-01-01T00:00:00Z')
    for (let i = 0; i < 25; i++) {
      // pairs share a timestamp: the id breaks the tie
      const occurredAt = new Date(base + Math.floor(i / 2) * 60_000).toISOString()
      await c.post('/api/transactions', { accountId: account, amountCents: -(i + 1), category: 'misc', occurredAt })
    }
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const res: { body: { items: Array<{ id: string }>, next: string | null } } = await c.get(`/api/transactions?limit=7${cursor ? `&cursor=${cursor}` : ''}`)
      if (!res.body.items) t.fail(JSON.stringify(res.body))
      seen.push(...res.body.items.map((x) => x.id))
      cursor = res.body.next
      pages++
    } while (cursor)
    t.equal(pages, 4)
    t.equal(seen.length, 25)
    t.equal(new Set(seen).size, 25, 'no row twice')
    t.equal((await c.get('/api/transactions?cursor=garbage')).status, 400)
    t.equal((await c.get('/api/transactions?limit=1000')).status, 400)
  })

  t.test('bad input is a 4xx with a message, never a 500', async (t) => {
    const server = await app(t, backend)
    const c = new Client(server)
    t.equal((await c.signup('not-an-email', 'long enough')).status, 400)
    t.equal((await c.signup('short@example.com', 'short')).status, 400)
    await c.signup('dup@example.com', 'long enough 1')
    const dup = await new Client(server).signup('DUP@example.com', 'long enough 2')
    t.equal(dup.status, 409)
    t.equal(dup.body.code, 'FINANCE_EMAIL_TAKEN')
    const account = (await c.get('/api/accounts')).body.items[0].id
    t.equal((await c.post('/api/transactions', { accountId: account, amountCents: 1.5, category: 'x' })).status, 400)
    t.equal((await c.post('/api/transactions', { accountId: 'abc', amountCents: 1, category: 'x' })).status, 400)
    t.equal((await c.post('/api/transactions', { accountId: '999999', amountCents: 1, category: 'x' })).status, 404)
    t.equal((await c.get('/api/quotes?symbols=NOPE')).status, 400)
  })

  t.test('a second login elsewhere plus log-out-everywhere ends both sessions, and no one else\'s', async (t) => {
    const server = await app(t, backend)
    const laptop = new Client(server)
    await laptop.signup('everywhere@example.com', 'long enough password')
    const phone = new Client(server)
    t.equal((await phone.login('everywhere@example.com', 'long enough password')).status, 200)
    const bystander = new Client(server)
    await bystander.signup('bystander@example.com', 'long enough password')
    t.not(phone.cookie, laptop.cookie, 'two sessions')
    const userId = (await laptop.get('/api/auth/me')).body.user.id
    t.equal((await server.sessions.list(userId)).length, 2, 'both in the per-user index in Redis')
    t.equal((await laptop.get('/api/summary')).status, 200)
    t.equal((await phone.get('/api/summary')).status, 200)

    const phoneCookie = phone.cookie
    const ended = await phone.post('/api/auth/logout-everywhere')
    t.equal(ended.status, 200)
    // replaying the old cookie, as a thief who copied it would
    phone.cookie = phoneCookie
    t.equal(ended.body.sessionsEnded, 2)
    t.equal((await phone.get('/api/summary')).status, 401, 'this device is logged out')
    t.equal((await laptop.get('/api/summary')).status, 401, 'the other device is logged out')
    t.equal((await bystander.get('/api/summary')).status, 200, 'another user is not')
    // a new login works as before
    t.equal((await laptop.login('everywhere@example.com', 'long enough password')).status, 200)
    t.equal((await laptop.get('/api/summary')).status, 200)
  })

  t.test('insights are computed once across instances and served from the cache for the hour', async (t) => {
    const insights = new InsightsModel(300)
    const [a, b] = await instances(t, backend, 2, {}, { insights }) as [FastifyInstance, FastifyInstance]
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
    const [a, b] = await instances(t, backend, 2) as [FastifyInstance, FastifyInstance]
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

  t.test('readiness names the Redis each use depends on; sessions and rate limits write to theirs, the cache to its own', async (t) => {
    const redis = await backend(t)
    const server = await app(t, redis)
    const c = new Client(server)
    await c.signup('placed@example.com', 'long enough password')
    t.equal((await c.get('/api/summary')).status, 200)
    await server.health.runChecks()
    const ready = await server.inject('/health/ready')
    t.equal(ready.statusCode, 200)
    const checks = ready.json().checks
    for (const name of ['redis-sessions:connection', 'redis-cache:connection', 'redis:session', 'redis:ratelimit', 'redis:cache']) {
      t.equal(checks[name]?.[0]?.status, 'pass', `${name} passes: ${JSON.stringify(checks[name])}`)
    }
    const sessionsUrl = redis.env.SESSION_REDIS_URL ?? redis.env.REDIS_URL ?? ''
    const cacheUrl = redis.env.CACHE_REDIS_URL ?? redis.env.REDIS_URL ?? ''
    t.match(checks['redis-sessions:connection'][0].output, /sessions.*rate limits/, 'the sessions check names what depends on it')
    t.match(checks['redis-cache:connection'][0].output, /the cache/, 'the cache check names what depends on it')
    // readiness is reachable through the balancer: the Redis addresses go to logs, never to a response
    for (const url of [sessionsUrl, cacheUrl]) {
      for (const host of hostsOf(url).split(',')) t.notMatch(ready.body, host, `readiness does not show ${host}`)
    }

    const sessionKeys = await redis.keys('sessions')
    const cacheKeys = await redis.keys('cache')
    const prefix = redis.env.REDIS_KEY_PREFIX ?? ''
    t.ok(sessionKeys.some((k) => k.startsWith(`${prefix}session:`)), 'sessions are in the sessions Redis')
    t.ok(sessionKeys.some((k) => k.startsWith(`${prefix}rl:`)), 'rate limits are in the sessions Redis')
    t.ok(cacheKeys.some((k) => k.startsWith(`${prefix}cache:`)), 'the cache is in the cache Redis')
    if (sessionsUrl !== cacheUrl) {
      t.notOk(cacheKeys.some((k) => !k.startsWith(`${prefix}cache:`)), 'nothing but the cache in the cache Redis')
      t.notOk(sessionKeys.some((k) => k.startsWith(`${prefix}cache:`)), 'no cache entry in the sessions Redis')
    }
  })

  t.test('rate limits: login attempts per address and email are few; static files, the page and probes are free', async (t) => {
    const redis = await backend(t)
    const server = await app(t, redis, { LOGIN_RATE_LIMIT_MAX: '3', RATE_LIMIT_MAX: '20' })
    const c = new Client(server)
    await c.signup('limited@example.com', 'the right password')

    const attempts = []
    for (let i = 0; i < 4; i++) attempts.push((await new Client(server).login('limited@example.com', 'a wrong password')).status)
    t.same(attempts, [401, 401, 429, 429], 'signup took one of the 3 attempts for this address and email')
    const other = await new Client(server).login('someone-else@example.com', 'whatever password')
    t.equal(other.status, 401, 'another email from the same address has its own budget')

    // the shared limit lives in Redis under the app's prefix, not in this process
    t.ok((await redis.keys('sessions')).some((k) => k.startsWith(`${redis.env.REDIS_KEY_PREFIX}rl:`)), 'counted in the sessions Redis')

    for (let i = 0; i < 30; i++) {
      t.equal((await server.inject('/assets/app.js')).statusCode, 200)
      t.equal((await server.inject('/')).statusCode, 200)
      t.equal((await server.inject('/health')).statusCode, 200)
    }
    // 90 static and probe requests later the user's API budget of 20 is untouched
    const summary = await c.get('/api/summary')
    t.equal(summary.status, 200)
    t.match(String(summary.headers.ratelimit), /remaining=19|r=19/, `one API request counted: ${summary.headers.ratelimit}`)
  })
}

/** `host:port[,host:port]` of a Redis URL */
function hostsOf (url: string): string {
  return url.replace(/^[a-z+]+:\/\/(?:[^@]*@)?/, '').replace(/\/.*$/, '')
}
