import t, { type Test } from 'tap'
import { isolatedRedis, startRedis, waitFor } from '@headroom/testing'
import { LocalWindow, secondsOf } from '../src/index.js'
import { makePolicy } from '../src/options.js'
import { buildApp, ready, redisClient } from './helpers.js'

/** `t=` of the RateLimit header */
function tOf (header: string | string[] | number | undefined): number {
  return Number(/;t=(\d+)$/.exec(String(header))?.[1])
}

t.test('in process, on a fake clock: the retry time never exceeds the window, and is honest', async (t) => {
  // windows whose sub-windows do not divide them (ceil) and ones that do
  const shapes = [
    { w: 60_000, k: 60 }, { w: 1000, k: 60 }, { w: 2500, k: 3 }, { w: 999, k: 7 }, { w: 5000, k: 1 }
  ]
  let seed = 7
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  for (const { w, k } of shapes) {
    const g = Math.ceil(w / k)
    let now = 10_000_000 + Math.floor(random() * g)
    const local = new LocalWindow(10, () => now)
    let over = 0
    let dishonest = 0
    let maxRetry = 0
    for (let i = 0; i < 3000; i++) {
      now += Math.floor(random() * (random() < 0.05 ? w : w / 20))
      const take = local.take('k', 5, g, k, 1 + Math.floor(random() * 3), w)
      maxRetry = Math.max(maxRetry, take.retryMs)
      if (take.retryMs > w + 1 || take.retryMs <= 0) over++
      if (take.count >= 5) {
        // refused from now on: at the retry time, and not before, the count has dropped
        const at = now
        now = at + take.retryMs - 1
        const before = local.take('k', 5, g, k, 0, w).count
        now = at + take.retryMs
        if (before < 5 || local.take('k', 5, g, k, 0, w).count >= 5) dishonest++
      }
    }
    t.equal(over, 0, `W=${w} ms in ${k} sub-windows: retry within (0, W + 1] ms (max ${maxRetry})`)
    t.equal(dishonest, 0, `W=${w} ms: the count drops exactly at the retry time`)
  }
  const policy = makePolicy('t', 'p', { limit: 1, window: 60_000 }, { limit: 1, windowMs: 60_000, buckets: 60, hook: 'onRequest' })
  t.equal(secondsOf(60_001, policy), 60, 'the extra millisecond is not an extra second')
  t.equal(secondsOf(1, policy), 1)
})

/** Exhausts the quota of a 60 s window in one sub-window and reads what the 429 says. */
async function exhaust (t: Test, app: import('fastify').FastifyInstance) {
  for (let i = 0; i < 3; i++) {
    const ok = await app.inject('/')
    t.equal(ok.statusCode, 200)
    t.ok(tOf(ok.headers.ratelimit) <= 60, `t=${tOf(ok.headers.ratelimit)} <= 60 on a 200`)
  }
  const res = await app.inject('/')
  t.equal(res.statusCode, 429)
  const retry = Number(res.headers['retry-after'])
  t.ok(retry >= 59 && retry <= 60, `Retry-After ${retry} s: the whole window, not more`)
  t.ok(tOf(res.headers.ratelimit) <= 60, `t=${tOf(res.headers.ratelimit)} <= 60`)
  t.match(res.json().detail, /retry in (59|60) s/)
}

t.test('Retry-After and t= on a 429 never exceed the window: Redis, local, and the store-down fallback', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  await t.test('Redis', async (t) => exhaust(t, await buildApp(t, { redis, prefix, limit: 3, window: '60s' })))
  await t.test('local (no Redis)', async (t) => exhaust(t, await buildApp(t, { limit: 3, window: '60s' })))
  await t.test('Redis down, onStoreDown local', async (t) => {
    const server = await startRedis(t)
    const down = await ready(redisClient(t, server.url))
    await server.stop()
    await waitFor('client noticed', () => down.status !== 'ready')
    const app = await buildApp(t, { redis: down, limit: 3, window: '60s' })
    await exhaust(t, app)
    t.equal(app.headroomRateLimit.mode, 'fallback')
  })
})
