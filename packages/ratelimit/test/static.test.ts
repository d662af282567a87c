import t from 'tap'
import { isolatedRedis } from '@headroom/testing'
import { buildApp, ready, redisClient } from './helpers.js'

t.test('1,000 requests each for /static/app.js and /favicon.ico leave the client\'s count unchanged', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, { redis, prefix, limit: 500 }, (app) => {
    app.get('/static/*', async () => 'asset')
    app.get('/favicon.ico', async () => 'icon')
    app.get('/bundle/*', async () => 'asset')
    app.get('/users/:id', async () => 'user')
    app.get('/health', async () => 'up')
    app.get('/health/ready', async () => 'ready')
    app.get('/metrics', async () => '')
    app.get('/probe', { config: { rateLimit: false } }, async () => 'probe')
  })
  const key = `${prefix}default:ip:127.0.0.1`
  t.equal((await app.inject('/')).statusCode, 200)
  t.equal(await redis.hget(key, 's'), '1', 'an API request is counted')

  for (const path of ['/static/app.js', '/favicon.ico']) {
    for (let wave = 0; wave < 10; wave++) {
      const responses = await Promise.all(Array.from({ length: 100 }, () => app.inject(path)))
      if (responses.some((r) => r.statusCode !== 200 || r.headers.ratelimit !== undefined)) t.fail(`${path} was limited or counted`)
    }
  }
  for (const path of ['/bundle/app.css', '/bundle/font.woff2', '/bundle/app.js.map', '/health', '/health/ready', '/metrics', '/probe']) {
    await app.inject(path)
  }
  await app.inject({ method: 'OPTIONS', url: '/' })
  t.equal(await redis.hget(key, 's'), '1', '2,000 asset requests, health probes, rateLimit:false routes and a preflight: count unchanged')

  t.equal((await app.inject('/users/x.js')).headers.ratelimit !== undefined, true, 'a parametric API route called with a static extension is counted')
  await app.inject({ method: 'HEAD', url: '/' })
  t.equal(await redis.hget(key, 's'), '3', 'HEAD is counted like GET')
})

t.test('static skipping can be configured or turned off', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, { redis, prefix, staticAssets: { prefixes: ['/cdn/'], extensions: ['txt'] } }, (app) => {
    app.get('/cdn/*', async () => 'a')
    app.get('/static/*', async () => 'a')
    app.get('/files/*', async () => 'a')
  })
  const off = await buildApp(t, { redis, prefix: `${prefix}off:`, staticAssets: false }, (app) => {
    app.get('/static/*', async () => 'a')
  })
  t.equal((await app.inject('/cdn/x.bin')).headers.ratelimit, undefined, 'custom prefix skipped')
  t.equal((await app.inject('/files/readme.txt')).headers.ratelimit, undefined, 'custom extension skipped')
  t.not((await app.inject('/static/app.js')).headers.ratelimit, undefined, 'defaults replaced')
  t.not((await off.inject('/static/app.js')).headers.ratelimit, undefined, 'staticAssets: false counts everything')
})
