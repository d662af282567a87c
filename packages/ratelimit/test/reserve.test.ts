import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { isolatedRedis, sleep, startRedis, waitFor } from '@headroom/testing'
import { getHub } from '@headroom/core'
import { buildApp, maxInWindow, ready, redisClient, type Entry } from './helpers.js'

const W = 2000

/** A metric's value from the app's registry (0 when absent). */
async function metricOf (app: FastifyInstance, name: string, labels: string): Promise<number> {
  const text = await getHub(app).registry.metrics()
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}
const calls = (app: FastifyInstance) => metricOf(app, 'headroom_ratelimit_redis_calls_total', 'policy="default"')
const tokens = (app: FastifyInstance, state: string) => metricOf(app, 'headroom_ratelimit_reserved_tokens_total', `policy="default",state="${state}"`)

/**
 * `loops` concurrent clients per instance, each sending one request after
 * another (a pause of 0-29 ms between) for keys picked from `keys`, until
 * `running()` is false; every answer logged per key.
 */
async function hammer (apps: FastifyInstance[], keys: string[], loops: number, running: () => boolean, logs: Map<string, Entry[]>): Promise<void> {
  let seed = 11
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  await Promise.all(apps.flatMap((app) => Array.from({ length: loops }, async () => {
    while (running()) {
      const key = keys[Math.floor(random() * keys.length)] as string
      const sent = performance.now()
      const res = await app.inject({ url: '/', headers: { 'x-client': key } })
      const log = logs.get(key) ?? []
      logs.set(key, log)
      log.push({ sent, recv: performance.now(), status: res.statusCode })
      await sleep(Math.floor(random() * 30))
    }
  })))
}

const byHeader = { identify: (req: { headers: Record<string, unknown> }) => req.headers['x-client'] as string | undefined, hook: 'onRequest' as const }

function worst (logs: Map<string, Entry[]>): { key: string, max: number, admitted: number } {
  let result = { key: '', max: 0, admitted: 0 }
  for (const [key, log] of logs) {
    const max = maxInWindow(log, W)
    if (max >= result.max) result = { key, max, admitted: log.filter((e) => e.status === 200).length }
  }
  return result
}

t.test('batched reservations across three instances: no rolling window admits more than the limit (a hot key, and many keys)', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const scenarios = [
    { name: 'one hot key', keys: ['hot'], limit: 300 },
    { name: '6 keys', keys: Array.from({ length: 6 }, (_, i) => `k${i}`), limit: 100 }
  ]
  const apps: FastifyInstance[] = []
  for (const { name, keys, limit } of scenarios) {
    // 4 sub-windows of 500 ms: the lease (1 s by default) is capped at 500 ms
    const three = await Promise.all([1, 2, 3].map(() => buildApp(t, { redis, prefix: `${prefix}${keys.length}:`, limit, window: W, buckets: 4, ...byHeader })))
    apps.push(...three)
    const logs = new Map<string, Entry[]>()
    const until = performance.now() + 3.5 * W
    await hammer(three, keys, 4, () => performance.now() < until, logs)
    const { key, max, admitted } = worst(logs)
    t.ok(max <= limit, `${name}: at most ${limit} admissions in any ${W} ms window (busiest: ${key}, ${max}; ${admitted} admitted over ${3.5 * W} ms)`)
    const all = [...logs.values()].flat()
    t.ok(all.some((e) => e.status === 429), `${name}: the limit was reached`)
    t.equal(all.filter((e) => e.status !== 200 && e.status !== 429).length, 0, `${name}: only 200 and 429`)
  }
  const reserved = (await Promise.all(apps.map((app) => tokens(app, 'reserved')))).reduce((a, b) => a + b)
  const spent = (await Promise.all(apps.map((app) => tokens(app, 'spent')))).reduce((a, b) => a + b)
  t.ok(reserved > 0 && spent > 0, `reservations were made and spent (${reserved} reserved, ${spent} spent at the last settlement)`)
})

t.test('a token spent late in its lease counts until the lease end + W: another instance is refused until then', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const limit = 40
  const g = 500
  const options = { redis, prefix, limit, window: W, buckets: W / g, reserve: { leaseMs: 400 } }
  const [a, b] = await Promise.all([buildApp(t, options), buildApp(t, options)]) as [FastifyInstance, FastifyInstance]
  const log: Entry[] = []
  const send = async (app: FastifyInstance) => {
    const sent = performance.now()
    const res = await app.inject('/')
    log.push({ sent, recv: performance.now(), status: res.statusCode })
  }
  // start 100 ms before a sub-window of Redis's clock ends, so the tokens are spent after it ended
  const [sec, usec] = (await redis.time()) as [string | number, string | number]
  const serverNow = Number(sec) * 1000 + Number(usec) / 1000
  await sleep(Math.ceil(serverNow / g) * g - serverNow + g - 100)
  const t0 = performance.now()
  const at = async (ms: number) => { const wait = t0 + ms - performance.now(); if (wait > 0) await sleep(wait) }
  await send(a)
  await send(a) // the key is hot on A now: this call reserves (a quarter of what is left)
  const reserved = await tokens(a, 'reserved')
  t.ok(reserved > 0, `A reserved ${reserved} tokens`)
  // A spends them late in the lease (the second call went out at most ~10 ms after t0), all but one, so
  // that no refill ahead takes more of the quota; B asks from t0 + 450 on
  const spends = Array.from({ length: reserved - 1 }, async (_, i) => { await at(150 + i * (200 / reserved)); await send(a) })
  await at(450)
  while (performance.now() < t0 + W + 800) {
    await send(b)
    await sleep(5)
  }
  await Promise.all(spends)
  const served = log.filter((e) => e.status === 200).length
  const max = maxInWindow(log, W)
  t.ok(max <= limit, `at most ${limit} admissions in any ${W} ms window (saw ${max}; ${served} admitted)`)
  t.ok(await tokens(a, 'spent') + await tokens(a, 'reserved') > 0, 'the metrics saw the reservation')
})

t.test('batched reservations through a Redis restart that keeps the data: no rolling window admits more than the limit', async (t) => {
  // AOF with fsync always: what Redis acknowledged survives a SIGKILL, so the counts (and the reservations) are still there after it
  const server = await startRedis(t, { args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
  const redis = await ready(redisClient(t, server.url))
  // closed: nothing is admitted uncounted while Redis is down, except tokens reserved (and counted) before
  // a limit the load reaches in about half a second here (later on a slower machine): the kill comes before,
  // while every key holds reservations
  const limit = 300
  const apps = await Promise.all([1, 2, 3].map(() => buildApp(t, {
    redis, limit, window: W, buckets: 4, onStoreDown: 'closed', resetTimeoutMs: 100, commandTimeoutMs: 1000, ...byHeader
  })))
  const logs = new Map<string, Entry[]>()
  const keys = ['hot', 'a', 'b', 'c']
  let running = true
  const load = hammer(apps, keys, 4, () => running, logs)
  await waitFor('reservations held', async () => (await tokens(apps[0] as FastifyInstance, 'reserved')) > 0, 5000, 5)
  await server.kill()
  await sleep(300)
  await server.start()
  await waitFor('client reconnected', () => redis.status === 'ready')
  // then the hot key is driven to its limit however slowly a busy machine runs the load: bursts of 30
  // across the three instances, logged like the load (at most 2 x limit requests)
  const refused = () => (logs.get('hot') ?? []).some((e) => e.status === 429)
  for (let sent = 0; !refused() && sent < 2 * limit; sent += 30) {
    await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      const start = performance.now()
      const res = await (apps[i % 3] as FastifyInstance).inject({ url: '/', headers: { 'x-client': 'hot' } })
      const log = logs.get('hot') ?? []
      logs.set('hot', log)
      log.push({ sent: start, recv: performance.now(), status: res.statusCode })
    }))
  }
  running = false
  await load
  const { key, max, admitted } = worst(logs)
  t.ok(max <= limit, `at most ${limit} admissions in any ${W} ms window (busiest: ${key}, ${max}; ${admitted} admitted)`)
  const all = [...logs.values()].flat()
  t.ok(all.some((e) => e.status === 503), 'Redis was down for a while (503s, onStoreDown closed)')
  t.ok(all.some((e) => e.status === 429), 'the limit was reached')
  const reserved = (await Promise.all(apps.map((app) => tokens(app, 'reserved')))).reduce((a, b) => a + b)
  t.ok(reserved > 0, `reservations were made (${reserved} tokens)`)
})

t.test('a hot key costs far fewer than one Redis call per request; near its limit, one call per request', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const hot = await buildApp(t, { redis, prefix, limit: 1_000_000, window: '1m' })
  for (let i = 0; i < 500; i++) t.equal((await hot.inject('/')).statusCode, 200)
  const perRequest = await calls(hot) / 500
  t.ok(perRequest < 0.15, `hot key, one request after another: ${perRequest.toFixed(3)} Redis calls per request`)

  const near = await buildApp(t, { redis, prefix: `${prefix}near:`, limit: 30, window: '1m' })
  const callsBefore: number[] = []
  const remaining: number[] = []
  for (let i = 0; i < 32; i++) {
    callsBefore.push(await calls(near))
    const res = await near.inject('/')
    remaining.push(res.statusCode === 200 ? Number(/;r=(\d+);/.exec(String(res.headers.ratelimit))?.[1]) : -1)
  }
  callsBefore.push(await calls(near))
  t.same(remaining.slice(0, 30), Array.from({ length: 30 }, (_, i) => 29 - i), 'all 30 admitted, and RateLimit r= counts down by one as without reservations')
  t.same(remaining.slice(30), [-1, -1], 'then refused')
  const callsOf = (i: number) => (callsBefore[i + 1] as number) - (callsBefore[i] as number)
  t.ok(Array.from({ length: 26 }, (_, i) => callsOf(i)).reduce((a, b) => a + b) < 13, 'far from the limit, fewer calls than requests')
  // a call with 4 or fewer left gets no extra token: the last ones (and the first refused) go one call each
  t.same([callsOf(27), callsOf(28), callsOf(29), callsOf(30)], [1, 1, 1, 1], `with 3 or fewer left, one call per request (calls: ${Array.from({ length: 32 }, (_, i) => callsOf(i)).join('')})`)
})

t.test('unspent tokens come back with the next call; reset drops this instance\'s reservation', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const key = `${prefix}default:ip:127.0.0.1`
  const app = await buildApp(t, { redis, prefix, limit: 1000, window: '1m', reserve: { leaseMs: 200 }, policies: { api: { limit: 1000, window: '1m' } } })
  await app.inject('/')
  await app.inject('/')
  const held = Number(await redis.hget(key, 's'))
  t.ok(held > 2, `the second request reserved tokens (${held} counted for 2 requests)`)
  await sleep(400)
  await app.inject('/')
  t.equal(Number(await redis.hget(key, 's')), 3, 'after the lease, the next call gave the unspent ones back: Redis counts the 3 requests')
  t.equal(await tokens(app, 'returned'), held - 2, 'and the metric says so')

  const off = await buildApp(t, { redis, prefix: `${prefix}off:`, limit: 1000, window: '1m', reserve: false })
  for (let i = 0; i < 20; i++) await off.inject('/')
  t.equal(await calls(off), 20, 'reserve: false, one call per request')
  t.equal(await redis.hget(`${prefix}off:default:ip:127.0.0.1`, 's'), '20')

  // a named policy used by a route, reset by the application
  const other = await buildApp(t, { redis, prefix: `${prefix}reset:`, limit: 1000, window: '1m', policies: { api: { limit: 1000, window: '1m' } } }, (app) => {
    app.get('/api', { config: { rateLimit: { groupId: 'api' } } }, async () => 'ok')
  })
  await other.inject('/api')
  await other.inject('/api')
  const before = await metricOf(other, 'headroom_ratelimit_redis_calls_total', 'policy="api"')
  await other.inject('/api')
  t.equal(await metricOf(other, 'headroom_ratelimit_redis_calls_total', 'policy="api"'), before, 'served from the reservation')
  await other.headroomRateLimit.reset('api', 'ip:127.0.0.1')
  await other.inject('/api')
  t.equal(await metricOf(other, 'headroom_ratelimit_redis_calls_total', 'policy="api"'), before + 1, 'after reset, the next request asks Redis again')
  t.equal(await redis.hget(`${prefix}reset:api:ip:127.0.0.1`, 's'), '1', 'and Redis counts it alone')
})

t.test('Redis killed and restarted under load (onStoreDown local): tokens held at the kill count against each instance\'s fallback quota', async (t) => {
  // no persistence: the restarted Redis is empty, as after a crash without AOF
  const server = await startRedis(t)
  const redis = await ready(redisClient(t, server.url))
  const limit = 300
  const window = 4000
  const quota = Math.ceil(limit / 3)
  // 4 sub-windows of 1 s, so a lease of 1 s; a reservation is at most 64 tokens (and never more than the quota)
  const apps = await Promise.all([1, 2, 3].map(() => buildApp(t, {
    redis, limit, window, buckets: 4, localDivisor: 3, onStoreDown: 'local', commandTimeoutMs: 250, resetTimeoutMs: 100, ...byHeader
  })))
  const logs: Entry[][] = apps.map(() => [])
  const load$ = { running: true }
  const load = Promise.all(apps.flatMap((app, i) => Array.from({ length: 4 }, async () => {
    while (load$.running) {
      const sent = performance.now()
      const res = await app.inject({ url: '/', headers: { 'x-client': 'hot' } })
      ;(logs[i] as Entry[]).push({ sent, recv: performance.now(), status: res.statusCode })
      await sleep(2)
    }
  })))
  // every instance holds tokens (a reservation's worth: far from the limit of 300) when Redis dies
  await waitFor('every instance reserved tokens', async () => (await Promise.all(apps.map((app) => tokens(app, 'reserved')))).every((n) => n > 0), 5000, 2)
  const heldAtKill = await Promise.all(apps.map(async (app) => await tokens(app, 'reserved') - await tokens(app, 'spent')))
  await server.kill()
  const killedAt = performance.now()
  const sentSinceKill = (log: Entry[]) => log.filter((e) => e.sent >= killedAt).length
  // each instance sends well over its quota plus a whole reservation while Redis is down
  await waitFor('each instance sent over its quota + 64 since the kill', () => logs.every((log) => sentSinceKill(log) > quota + 64 + 40), 30_000, 20)
  const restartedAt = performance.now()
  await server.start()
  await waitFor('client reconnected', () => redis.status === 'ready')
  await waitFor('Redis counts again', async () => Number(await redis.hget('headroom:rl:default:u:hot', 's')) > 0, 5000, 20)
  load$.running = false
  await load

  const outage = logs.map((log) => log.filter((e) => e.sent >= killedAt && e.recv <= restartedAt))
  const perInstance = outage.map((log) => maxInWindow(log, window))
  t.ok(perInstance.every((n) => n <= quota), `while Redis was down, at most ${quota} admissions per instance in any ${window} ms window (saw ${perInstance.join(', ')}; tokens reserved, not yet settled, at the kill: ${heldAtKill.join(', ')})`)
  const fleet = maxInWindow(outage.flat(), window)
  t.ok(fleet <= limit, `and at most ${limit} across the three (saw ${fleet})`)
  t.ok(outage.every((log) => log.some((e) => e.status === 429)), 'each instance\'s fallback refused')
  const all = logs.flat()
  t.equal(all.filter((e) => e.status !== 200 && e.status !== 429).length, 0, `only 200 and 429 in ${all.length} requests`)
})
