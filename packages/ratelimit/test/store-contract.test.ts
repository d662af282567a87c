import t from 'tap'
import fastifyRateLimit from '@fastify/rate-limit'
import { isolatedRedis, startRedis, testApp } from '@headroom/testing'
import headroomRateLimit from '../src/index.js'
import { buildApp, ready, redisClient } from './helpers.js'

t.test('the store plugs into @fastify/rate-limit itself: its API, our shared sliding window', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = testApp(t)
  await app.register(headroomRateLimit, { redis, prefix, skipPaths: ['/frl'] })
  await app.register(async (scope) => {
    await scope.register(fastifyRateLimit, { store: app.headroomRateLimit.Store as never, max: 3, timeWindow: 60_000 })
    scope.get('/frl', { config: { rateLimit: { max: 3, timeWindow: 60_000 } } }, async () => 'ok')
  })
  await app.ready()
  const codes = []
  for (let i = 0; i < 5; i++) codes.push((await app.inject('/frl')).statusCode)
  t.same(codes, [200, 200, 200, 429, 429], "@fastify/rate-limit's hook, limited by our store")
  t.equal(await redis.hget(`${prefix}GET /frl:127.0.0.1`, 's'), '3', 'counted in our sliding-window hash, named after the route')
})

t.test('unmatched URLs are counted under the default policy', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, { redis, prefix, limit: 2 })
  const codes = [(await app.inject('/nope')).statusCode, (await app.inject('/nope/2')).statusCode, (await app.inject('/wp-login.php')).statusCode]
  t.same(codes, [404, 404, 429], 'a scanner runs into the limit like anyone else')
  t.match((await app.inject('/')).headers.ratelimit, /r=0/)
})

t.test('localDivisor shares the quota between instances while Redis is down', async (t) => {
  const server = await startRedis(t)
  const redis = await ready(redisClient(t, server.url))
  await server.stop()
  const app = await buildApp(t, { redis, limit: 10, localDivisor: 4 })
  const codes = []
  for (let i = 0; i < 5; i++) codes.push((await app.inject('/')).statusCode)
  t.same(codes, [200, 200, 200, 429, 429], 'ceil(10 / 4) = 3 per instance')
  t.match((await app.inject('/')).headers['ratelimit-policy'], /q=10/, 'the advertised policy is still the shared one')
})
