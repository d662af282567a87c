import t from 'tap'
import { isolatedRedis } from '@headroom/testing'
import { getHub } from '@headroom/core'
import { buildApp, burst, count, ready, redisClient } from './helpers.js'

t.test('three instances sharing one Redis admit exactly `limit` requests of a client in the window', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const apps = await Promise.all([1, 2, 3].map(() => buildApp(t, { redis, prefix, limit: 50, window: '1m' })))
  // 200 requests in 4 concurrent waves, round-robin over the three instances
  const codes: number[] = []
  for (let wave = 0; wave < 4; wave++) codes.push(...await burst(apps, 50))
  t.equal(count(codes, 200), 50, 'exactly the limit accepted')
  t.equal(count(codes, 429), 150, 'every other request refused')
  t.equal(await redis.hget(`${prefix}default:ip:127.0.0.1`, 's'), '50', 'one shared counter in Redis')
})

t.test('routes of one group share one quota; a named login policy keys by IP and username after the body is parsed', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, {
    redis,
    prefix,
    limit: 100,
    policies: {
      login: { limit: 3, window: '1m', hook: 'preHandler', key: (req, client) => `${client}:${(req.body as { username?: string }).username ?? ''}` }
    }
  }, (app) => {
    app.get('/export/a', { config: { rateLimit: { groupId: 'exports', max: 5, timeWindow: '1m' } } }, async () => 'a')
    app.get('/export/b', { config: { rateLimit: { groupId: 'exports' } } }, async () => 'b')
    app.get('/expensive', { config: { rateLimit: { max: 2, timeWindow: '1m' } } }, async () => 'x')
    app.post('/login', { config: { rateLimit: { groupId: 'login' } } }, async () => 'in')
  })
  const a = await burst([app], 3, '/export/a')
  const b = await burst([app], 3, '/export/b')
  t.same([count(a, 200) + count(b, 200), count(a, 429) + count(b, 429)], [5, 1], 'six requests over two routes of a group of 5: five pass')

  const expensive = await burst([app], 4, '/expensive')
  t.equal(count(expensive, 200), 2, 'a route override is lower than the default')
  t.equal((await app.inject({ method: 'HEAD', url: '/expensive' })).statusCode, 429, 'HEAD shares the GET route\'s quota')

  const login = async (username: string) => (await app.inject({ method: 'POST', url: '/login', payload: { username, password: 'x' } })).statusCode
  const alice = [await login('alice'), await login('alice'), await login('alice'), await login('alice')]
  t.same(alice, [200, 200, 200, 429], 'a few attempts per IP and username')
  t.equal(await login('bob'), 200, 'another username from the same IP has its own attempts')
  t.equal((await app.inject('/')).statusCode, 200, 'the default policy is untouched by other policies')
  t.match((await app.inject('/')).headers.ratelimit, /^"default";r=98;t=\d+$/, 'default policy counted separately')

  const registry = getHub(app).registry
  const text = await registry.metrics()
  t.match(text, /headroom_ratelimit_requests_total\{policy="exports",outcome="allowed"\} 5/)
  t.match(text, /headroom_ratelimit_requests_total\{policy="exports",outcome="limited"\} 1/)
  t.match(text, /headroom_ratelimit_requests_total\{policy="login",outcome="limited"\} 1/)
})

t.test('an authenticated user is counted as the user, wherever they connect from', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, {
    redis,
    prefix,
    limit: 2,
    identify: (req) => (req as unknown as { user?: string }).user
  }, (app) => {
    // stands in for an auth plugin: identify runs after it (preHandler by default)
    app.addHook('onRequest', async (req) => {
      const user = req.headers['x-user']
      if (typeof user === 'string') (req as unknown as { user?: string }).user = user
    })
  })
  const asUser = (user: string, ip: string) => app.inject({ url: '/', headers: { 'x-user': user }, remoteAddress: ip })
  const codes = [
    (await asUser('ann', '10.0.0.1')).statusCode,
    (await asUser('ann', '10.0.0.2')).statusCode,
    (await asUser('ann', '10.0.0.3')).statusCode,
    (await asUser('ben', '10.0.0.1')).statusCode
  ]
  t.same(codes, [200, 200, 429, 200], 'one bucket per user across addresses, another user unaffected')
  t.equal(await redis.exists(`${prefix}default:u:ann`), 1)
  t.equal((await app.inject({ url: '/', remoteAddress: '10.0.0.1' })).statusCode, 200, 'anonymous requests are counted by address')
})

t.test('without Redis the same window runs in process (one instance)', async (t) => {
  const app = await buildApp(t, { limit: 3, window: '1m' })
  t.equal(app.headroomRateLimit.mode, 'local')
  const codes = await burst([app], 5)
  t.same([count(codes, 200), count(codes, 429)], [3, 2])
  const res = await app.inject({ url: '/', remoteAddress: '192.0.2.9' })
  t.match(res.headers.ratelimit, /^"default";r=2;t=\d+$/, 'another client, its own quota')
})
