import { isolatedRedis, isolatedSchema } from '@headroom/testing'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'
import { Client } from './helpers.js'

t.test('rate limits: login attempts per address and email are few; static files, the page and probes are free', async (t) => {
  const { url } = await isolatedSchema(t)
  const redis = await isolatedRedis(t)
  await migrate(url)
  const app = await buildApp({
    config: loadConfig({ DATABASE_URL: url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, LOG_LEVEL: 'silent', LOGIN_RATE_LIMIT_MAX: '3', RATE_LIMIT_MAX: '20' }),
    databaseUrl: url
  })
  t.teardown(() => app.close())
  const c = new Client(app)
  await c.signup('limited@example.com', 'the right password')

  const attempts = []
  for (let i = 0; i < 4; i++) attempts.push((await new Client(app).login('limited@example.com', 'a wrong password')).status)
  t.same(attempts, [401, 401, 429, 429], 'signup took one of the 3 attempts for this address and email')
  const other = await new Client(app).login('someone-else@example.com', 'whatever password')
  t.equal(other.status, 401, 'another email from the same address has its own budget')

  // the shared limit lives in Redis under the app's prefix, not in this process
  t.ok((await redis.client().keys(`${redis.prefix}rl:*`)).length > 0, 'counted in Redis')

  for (let i = 0; i < 30; i++) {
    t.equal((await app.inject('/assets/app.js')).statusCode, 200)
    t.equal((await app.inject('/')).statusCode, 200)
    t.equal((await app.inject('/health')).statusCode, 200)
  }
  // 90 static and probe requests later the user's API budget of 20 is untouched
  const summary = await c.get('/api/summary')
  t.equal(summary.status, 200)
  t.match(String(summary.headers.ratelimit), /remaining=19|r=19/, `one API request counted: ${summary.headers.ratelimit}`)
})
