import { errors as cacheErrors } from '@headroom/cache'
import { errors as coreErrors } from '@headroom/core'
import { errors as poolErrors } from '@headroom/pool'
import { errors as sessionErrors } from '@headroom/session'
import { LogLines, startPostgres } from '@headroom/testing'
import t from 'tap'
import { Client } from './helpers.js'
import { hostileApp, user } from './hostile.js'

/** What must never reach a client: a SQLSTATE, PostgreSQL's words, an address, a port. */
const INTERNALS = /\b(22012|42P01|08006|57P01)\b|division by zero|postgres|PostgreSQL|relation|ECONNREFUSED|127\.0\.0\.1|localhost|:\d{4,5}\b/i

t.test('a 500 says "internal error" and the request id; the log line with that id has the database error', async (t) => {
  const logs = new LogLines()
  const app = await hostileApp(t, {
    logs,
    routes (app) {
      // a real PostgreSQL error (SQLSTATE 22012), and an error whose message names an address
      app.get('/test/sql-error', async () => (await app.db.query('SELECT 1 / 0')).rows)
      app.get('/test/address', async () => { throw new Error('connect ECONNREFUSED 10.0.3.7:5432 (db-primary.internal)') })
      // a plugin's 500 (an aborted transaction): its code is a detail for the logs too
      app.get('/test/aborted', async () => { throw new poolErrors.TransactionAborted() })
    }
  })
  for (const path of ['/test/sql-error', '/test/address', '/test/aborted']) {
    const res = await app.inject(path)
    t.equal(res.statusCode, 500, path)
    const body = res.json()
    t.same(Object.keys(body), ['statusCode', 'error', 'message', 'requestId'], `${path}: ${res.body}`)
    t.same(body, { statusCode: 500, error: 'Internal Server Error', message: 'internal error', requestId: body.requestId })
    t.notMatch(res.body, INTERNALS, `${path}: nothing internal in the body`)
    t.notMatch(res.body, /10\.0\.3\.7|db-primary|HEADROOM_POOL/, `${path}: nor the address or the plugin's code`)
    const lines = logs.of(body.requestId)
    t.ok(lines.some((l) => l.level === 50 && l.err), `${path}: an error line carries the request id ${body.requestId}`)
  }
  // @headroom/pool wraps it (HEADROOM_POOL_QUERY_FAILED); the log keeps its SQLSTATE and, through the cause, PostgreSQL's message
  const sqlLine = logs.lines.find((l) => l.err?.sqlState === '22012')
  t.ok(sqlLine, 'the SQLSTATE is in the log')
  t.match(sqlLine?.err.cause?.message, /division by zero/, 'and PostgreSQL\'s message')
})

t.test('a PostgreSQL outage is a 503 "temporarily unavailable" with Retry-After, and no address', async (t) => {
  const primary = await startPostgres(t)
  const logs = new LogLines()
  const app = await hostileApp(t, { databaseUrl: primary.url, logs })
  const { client } = await user(app, 'outage@example.com')
  t.equal((await client.get('/api/accounts')).status, 200)

  await primary.stop()
  const replies = [
    await client.get('/api/accounts'),
    await client.post('/api/accounts', { name: 'During the outage', kind: 'savings' }),
    await new Client(app).login('outage@example.com', 'long enough password'),
    await new Client(app).signup('new-during-outage@example.com', 'long enough password')
  ]
  for (const res of replies) {
    t.equal(res.status, 503, JSON.stringify(res.body))
    t.equal(res.body.message, 'the service is temporarily unavailable; retry shortly')
    t.match(res.body.code, /^HEADROOM_POOL_/, 'the plugin\'s code still reaches the client')
    t.match(res.body.requestId, /\S/)
    t.match(res.headers['retry-after'], /^\d+$/, 'with Retry-After')
    t.notMatch(JSON.stringify(res.body), INTERNALS, 'nothing about the database or its address')
    t.notMatch(JSON.stringify(res.body), String(new URL(primary.url).port))
  }
  const logged = logs.of(replies[0]!.body.requestId).find((l) => l.level === 50)
  t.match(JSON.stringify(logged?.err), /ECONNREFUSED|terminat|connect|shut/i, 'the log line says what failed')
})

t.test('plugin errors keep their status and code, never their cause\'s words; 4xx keep their message', async (t) => {
  const cause = 'connect ECONNREFUSED 127.0.0.1:6543 at SELECT password_hash FROM users'
  const app = await hostileApp(t, {
    routes (app) {
      app.get('/test/pool-unavailable', async () => { throw Object.assign(new poolErrors.Unavailable('primary'), { cause: new Error(cause) }) })
      app.get('/test/pool-exhausted', async () => { throw new poolErrors.PoolExhausted('primary', 50, 10) })
      app.get('/test/with-cause', async () => { throw Object.assign(new poolErrors.AcquireTimeout('primary', 2000), { cause: new Error(cause) }) })
      app.get('/test/session-unavailable', async () => { throw new sessionErrors.Unavailable(cause) })
      app.get('/test/redis-unavailable', async () => { throw new coreErrors.RedisUnavailable('connect ECONNREFUSED sessions.internal:6379') })
      app.get('/test/cache-timeout', async () => { throw new cacheErrors.FactoryTimeout(3000) })
      app.get('/test/retry-after', async () => { throw Object.assign(new poolErrors.Closing(), { headers: { 'retry-after': '7' } }) })
    }
  })
  for (const [path, code] of [
    ['/test/pool-unavailable', 'HEADROOM_POOL_UNAVAILABLE'],
    ['/test/pool-exhausted', 'HEADROOM_POOL_EXHAUSTED'],
    ['/test/with-cause', 'HEADROOM_POOL_ACQUIRE_TIMEOUT'],
    ['/test/session-unavailable', 'HEADROOM_SESSION_UNAVAILABLE'],
    ['/test/redis-unavailable', 'HEADROOM_CORE_REDIS_UNAVAILABLE'],
    ['/test/cache-timeout', 'HEADROOM_CACHE_FACTORY_TIMEOUT']
  ] as const) {
    const res = await app.inject(path)
    t.equal(res.statusCode, 503, path)
    t.equal(res.json().code, code, `${path}: the code reaches the client`)
    t.equal(res.headers['retry-after'], '5', `${path}: the default Retry-After`)
    t.notMatch(res.body, INTERNALS, `${path}: ${res.body}`)
    t.notMatch(res.body, /password_hash|SELECT|pool "primary"|connections|sessions\.internal|Redis|3000 ms/, `${path}: nothing of the cause, the pool or Redis`)
  }
  t.equal((await app.inject('/test/retry-after')).headers['retry-after'], '7', 'a plugin\'s own Retry-After is kept')

  // 4xx: the client's mistake, described
  const { client } = await user(app, 'fourxx@example.com')
  const token = client.csrfToken
  client.csrfToken = 'forged'
  const csrf = await client.post('/api/accounts', { name: 'x', kind: 'savings' })
  t.equal(csrf.status, 403)
  t.equal(csrf.body.code, 'FINANCE_CSRF')
  t.match(csrf.body.message, /x-csrf-token/)
  t.match(csrf.body.requestId, /^req-/, 'with the request id, as every error body')
  client.csrfToken = token
  const invalid = await client.post('/api/accounts', { name: 'x', kind: 'piggy bank' })
  t.equal(invalid.status, 400)
  t.equal(invalid.body.code, 'FST_ERR_VALIDATION')
  t.match(invalid.body.message, /body\/kind must be equal to one of the allowed values/)
  const malformed = await app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"email":' })
  t.equal(malformed.statusCode, 400)
  t.equal(malformed.json().code, 'FST_ERR_CTP_INVALID_JSON_BODY')
  // our own 503 keeps its message (written for clients) and its Retry-After
  const market = await hostileApp(t, { extra: { market: { quote: async () => { throw new Error(cause) } } as never } })
  const { client: trader } = await user(market, 'trader@example.com')
  const quotes = await trader.get('/api/quotes?symbols=AAPL')
  t.equal(quotes.status, 503)
  t.equal(quotes.body.code, 'FINANCE_QUOTES_UNAVAILABLE')
  t.match(quotes.body.message, /market data is unavailable/)
  t.equal(quotes.headers['retry-after'], '5')
  t.notMatch(JSON.stringify(quotes.body), INTERNALS)
})

t.test('the rate limiter\'s 429 reaches the client as the plugin sent it: problem+json, its code, Retry-After', async (t) => {
  const app = await hostileApp(t, { env: { LOGIN_RATE_LIMIT_MAX: '1' } })
  const attempts = []
  for (let i = 0; i < 2; i++) attempts.push(await new Client(app).login('limited@example.com', 'a wrong password'))
  t.same(attempts.map((r) => r.status), [401, 429])
  const limited = attempts[1]!
  t.match(limited.headers['content-type'], /application\/problem\+json/)
  t.equal(limited.body.code, 'HEADROOM_RATELIMIT_QUOTA_EXCEEDED')
  // (its bound by the window is @headroom/ratelimit's own test)
  t.ok(Number(limited.headers['retry-after']) >= 1, `Retry-After ${limited.headers['retry-after']}`)
  t.notMatch(JSON.stringify(limited.body), INTERNALS)
})
