import t from 'tap'
import http from 'node:http'
import { startRedis, sleep, waitFor, testApp } from '@headroom/testing'
import { getHub } from '@headroom/core'
import headroomRateLimit from '../src/index.js'
import { ready, redisClient } from './helpers.js'

const COMMAND_TIMEOUT_MS = 250
// above what the load sends before the kill, so Redis never refuses and the local limiter is what refuses
const LIMIT = 300

interface Sample { status: number, ms: number, start: number }

/** One keep-alive GET over a real socket, timed from the client. */
function get (agent: http.Agent, port: number): Promise<Sample> {
  const start = performance.now()
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - start, start }))
    }).on('error', reject)
  })
}

async function healthOf (app: import('fastify').FastifyInstance) {
  const check = getHub(app).checks().find((c) => c.name === 'redis:ratelimit')
  return (await check?.check())?.status
}

t.test('a private Redis killed under load: local limits hold, no 5xx, nobody waits past the timeout, Redis is used again after restart', async (t) => {
  const server = await startRedis(t)
  const redis = await ready(redisClient(t, server.url))
  const app = testApp(t)
  await app.register(headroomRateLimit, { redis, limit: LIMIT, window: '1m', commandTimeoutMs: COMMAND_TIMEOUT_MS, resetTimeoutMs: 200 })
  app.get('/', async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as import('node:net').AddressInfo).port
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => agent.destroy())
  const key = 'headroom:rl:default:ip:127.0.0.1'

  // before: Redis counts
  for (let i = 0; i < 10; i++) t.equal((await get(agent, port)).status, 200)
  t.equal(await redis.hget(key, 's'), '10', 'counted in Redis')
  t.equal(await healthOf(app), 'pass')

  // under load: 8 clients loop while Redis is SIGKILLed
  const samples: Sample[] = []
  const load$ = { running: true }
  const load = Promise.all(Array.from({ length: 8 }, async () => {
    while (load$.running) {
      samples.push(await get(agent, port))
      await sleep(5)
    }
  }))
  await sleep(100)
  await server.kill()
  const killedAt = performance.now()
  await sleep(1200)
  t.equal(app.headroomRateLimit.mode, 'fallback', 'the circuit opened: the local limiter decides')
  t.equal(await healthOf(app), 'warn', 'health says degraded')
  // The load runs until it has sent well over the quota since the kill,
  // however slowly a busy machine lets it go (the 1.2 s above is a minimum,
  // not what the proof relies on); bounded so a stuck load still ends.
  const sentAfterKill = () => samples.filter((s) => s.start >= killedAt).length
  await waitFor('the load after the kill is well over the quota', () => sentAfterKill() > LIMIT + 100, 30_000, 20)
  load$.running = false
  await load

  const statuses = new Set(samples.map((s) => s.status))
  const slowest = Math.max(...samples.map((s) => s.ms))
  t.equal(samples.filter((s) => s.status >= 500).length, 0, `zero 5xx in ${samples.length} requests`)
  // no request waits on the dead Redis beyond its command timeout plus scheduling
  // slack for a loaded machine (below a second timeout: two in a row still fail it)
  t.ok(slowest <= COMMAND_TIMEOUT_MS + 240, `slowest request ${slowest.toFixed(1)} ms <= command timeout + 240 ms`)
  const passedAfterKill = samples.filter((s) => s.start >= killedAt && s.status === 200).length
  t.ok(statuses.has(429), 'limits still enforced: the local limiter refuses')
  t.ok(passedAfterKill <= LIMIT, `${passedAfterKill} passed after the kill, within the local quota of ${LIMIT}`)
  t.ok(samples.filter((s) => s.start >= killedAt).length > LIMIT + 100, 'and the load after the kill was well over the quota')
  const metrics = await getHub(app).registry.metrics()
  t.match(metrics, /headroom_ratelimit_fallback_total\{policy="default",source="local"\} [1-9]/, 'fallback counted')
  t.match(metrics, /^headroom_ratelimit_fallback_active 1$/m)

  // after: Redis is back (empty: no persistence), the circuit closes by itself
  await server.start()
  await waitFor('client reconnected', () => redis.status === 'ready')
  await waitFor('circuit closed', async () => {
    await get(agent, port)
    return app.headroomRateLimit.mode === 'redis'
  }, 5000, 100)
  const before = Number(await redis.hget(key, 's'))
  await get(agent, port)
  t.equal(Number(await redis.hget(key, 's')), before + 1, 'requests are counted in Redis again')
  t.equal(await healthOf(app), 'pass', 'health recovered')
  t.match(await getHub(app).registry.metrics(), /^headroom_ratelimit_fallback_active 0$/m)
})

t.test('onStoreDown open and closed, with Redis down from the start', async (t) => {
  const server = await startRedis(t)
  const redis = await ready(redisClient(t, server.url))
  await server.stop()
  await waitFor('client noticed', () => redis.status !== 'ready')

  const build = async (onStoreDown: 'open' | 'closed') => {
    const app = testApp(t)
    await app.register(headroomRateLimit, { redis, limit: 1, onStoreDown })
    app.get('/', async () => ({ ok: true }))
    return app
  }
  const open = await build('open')
  const openCodes = [(await open.inject('/')).statusCode, (await open.inject('/')).statusCode, (await open.inject('/')).statusCode]
  t.same(openCodes, [200, 200, 200], 'open: requests pass uncounted')
  t.equal(await healthOf(open), 'warn')
  t.match(await getHub(open).registry.metrics(), /headroom_ratelimit_fallback_total\{policy="default",source="open"\} 3/)
  // a Redis refusing connections never opens the circuit (each command fails at once), yet nothing is shared
  t.match(await getHub(open).registry.metrics(), /^headroom_ratelimit_fallback_active 1$/m, 'the gauge says so while the client is not connected')

  const closed = await build('closed')
  const res = await closed.inject('/')
  t.equal(res.statusCode, 503, 'closed: refused, as an outage (503), never as over-limit (429)')
  t.equal(res.headers['retry-after'], '1')
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { status: 503, code: 'HEADROOM_RATELIMIT_STORE_UNAVAILABLE' })
  t.equal(await healthOf(closed), 'fail', 'closed: the (non-critical) check fails')
})

t.test('fallback_active is 1 while Redis refuses connections, though the circuit never opens', async (t) => {
  // a crashed Redis refuses at once: ioredis fails each command without a timeout, so the
  // breaker counts nothing, yet every decision is local (test/prometheus-e2e.test.ts found the gauge at 0)
  const server = await startRedis(t)
  const redis = await ready(redisClient(t, server.url))
  const app = testApp(t)
  await app.register(headroomRateLimit, { redis, limit: 100 })
  app.get('/', async () => ({ ok: true }))
  t.equal((await app.inject('/')).statusCode, 200)
  const gauge = async () => /^headroom_ratelimit_fallback_active (\d)$/m.exec(await getHub(app).registry.metrics())?.[1]
  t.equal(await gauge(), '0', 'Redis answering: 0')
  await server.kill()
  await waitFor('client noticed', () => redis.status !== 'ready')
  for (let i = 0; i < 3; i++) t.equal((await app.inject('/')).statusCode, 200, 'decided locally')
  t.equal(app.headroomRateLimit.mode, 'fallback')
  t.equal(await gauge(), '1', 'the gauge agrees with mode')
  await server.start()
  await waitFor('client reconnected', () => redis.status === 'ready')
  await waitFor('back on Redis', async () => {
    await app.inject('/')
    return app.headroomRateLimit.mode === 'redis'
  }, 10_000, 100)
  t.equal(await gauge(), '0', 'and 0 again once Redis is back')
})
