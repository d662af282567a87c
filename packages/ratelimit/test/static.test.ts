import t from 'tap'
import { isolatedRedis } from '@headroom/testing'
import type { FastifyRequest } from 'fastify'
import { skipper } from '../src/identity.js'
import { normalizeOptions } from '../src/options.js'
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

// Routes whose paths can never meet a path rule skip those rules per
// request (src/identity.ts, Skipper.forRoute); the router's loose matching
// must not let a skipped path reach a route that no longer checks it.
t.test('literal routes keep every skip rule that can reach them, whatever the case and slashes', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, { redis, prefix, skip: (request) => request.headers['x-internal'] === '1' }, (app) => {
    app.get('/HEALTH', async () => 'up')
    app.get('/Static', async () => 'index')
    app.get('/users', async () => 'users')
  }, { routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true } })
  const key = `${prefix}default:ip:127.0.0.1`
  const counted = async () => Number(await redis.hget(key, 's') ?? 0)

  t.equal((await app.inject('/users')).statusCode, 200)
  t.equal(await counted(), 1, 'a literal API route is counted')
  for (const path of ['/health', '/static/']) {
    const res = await app.inject(path)
    t.equal(res.statusCode, 200, `${path} is routed`)
    t.equal(res.headers.ratelimit, undefined, `${path} is not counted`)
  }
  await app.inject({ url: '/users', headers: { 'x-internal': '1' } })
  await app.inject({ method: 'OPTIONS', url: '/users' })
  t.equal(await counted(), 1, 'the user skip and skipped methods still apply on a narrowed route')
  await app.inject('/users/')
  await app.inject('//USERS?page=2')
  t.equal(await counted(), 3, 'the same route reached by another spelling is counted')
})

t.test('the per-route rule decides as the full rule does, for every route and path', async (t) => {
  const { any, forRoute } = skipper(normalizeOptions({ skip: (request) => request.headers['x-internal'] === '1' }))
  const routes = ['/', '/users', '/users/:id', '/HEALTH', '/health/ready', '/metrics/', '/Static', '/static/*', '/assets/app.css',
    '/favicon.ico', '/api//Logo.PNG', '/files/*', '/publication', '/v1/report.pdf', '/(a|b)', '/dashboard']
  const paths = ['/', '/users', '/users?page=2', '/users/', '/USERS', '/users/x.js', '/health', '/Health/', '/health/ready', '/metrics', '/metrics/',
    '/static', '/static/', '/Static/app.js', '/static/app.js', '/assets/app.css', '/favicon.ico', '/FAVICON.ICO', '/api/Logo.PNG',
    '/api//Logo.PNG', '/files/a.map', '/public/x', '/publication', '/v1/report.pdf', '/dashboard?x=/static/a.js', '//dashboard']
  // the paths a literal route can answer under the loosest router options
  const loose = (path: string) => (path.split('?')[0] as string).toLowerCase().replace(/\/{2,}/g, '/').replace(/\/+$/, '')
  const reaches = (route: string, path: string) => /[:*(]/.test(route) || loose(route) === loose(path)
  let compared = 0
  for (const route of routes) {
    const narrowed = forRoute(route)
    for (const path of paths.filter((p) => reaches(route, p))) {
      for (const method of ['GET', 'HEAD', 'POST', 'OPTIONS']) {
        for (const internal of ['0', '1']) {
          const request = { method, url: path, headers: { 'x-internal': internal }, routeOptions: { url: route } } as unknown as FastifyRequest
          if (narrowed(request) !== any(request)) t.fail(`${method} ${path} on route ${route}: per-route ${narrowed(request)}, full ${any(request)}`)
          compared++
        }
      }
    }
  }
  t.ok(compared > 500, `${compared} decisions compared`)
  t.equal(forRoute('/'), forRoute('/users'), 'routes that no path rule can reach share the method-only rule')
  t.equal(forRoute('/users/:id'), any, 'a parametric route keeps the full rule')
})
