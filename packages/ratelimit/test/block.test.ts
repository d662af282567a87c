import t from 'tap'
import { startRedis } from '@headroom/testing'
import { getHub } from '@headroom/core'
import { buildApp, burst, count, ready, redisClient } from './helpers.js'

async function scriptCalls (redis: import('ioredis').Redis): Promise<number> {
  const info = await redis.info('commandstats')
  let calls = 0
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) calls += Number(m[1])
  return calls
}

t.test('a client Redis refused is answered locally until its retry time: a flood does not reach Redis', async (t) => {
  const server = await startRedis(t)
  const redis = await ready(redisClient(t, server.url))
  const admin = await ready(redisClient(t, server.url))
  const app = await buildApp(t, { redis, limit: 5, window: '1m' })
  t.equal(count(await burst([app], 6), 200), 5)
  const before = await scriptCalls(admin)
  const flood = await burst([app], 1000)
  t.equal(count(flood, 429), 1000, 'all refused')
  t.equal(await scriptCalls(admin) - before, 0, 'without a single script call')
  t.match(await getHub(app).registry.metrics(), /headroom_ratelimit_fallback_total\{policy="default",source="block"\} 1000/)
  t.match((await app.inject('/')).headers['retry-after'], /^[0-9]+$/, 'blocked answers still carry Retry-After')

  const noBlock = await buildApp(t, { redis, limit: 5, window: '1m', localBlock: false, prefix: 'nb:' })
  await burst([noBlock], 6)
  const before2 = await scriptCalls(admin)
  await burst([noBlock], 50)
  t.ok(await scriptCalls(admin) - before2 > 0, 'localBlock: false asks Redis every time')
})

t.test('the block list is bounded', async (t) => {
  const server = await startRedis(t)
  const redis = await ready(redisClient(t, server.url))
  const admin = await ready(redisClient(t, server.url))
  const app = await buildApp(t, { redis, limit: 1, window: '1m', localBlock: { maxKeys: 2 } })
  const ips = ['192.0.2.1', '192.0.2.2', '192.0.2.3']
  for (const ip of ips) {
    await app.inject({ url: '/', remoteAddress: ip })
    await app.inject({ url: '/', remoteAddress: ip }) // refused by Redis: blocked locally
  }
  const before = await scriptCalls(admin)
  await app.inject({ url: '/', remoteAddress: '192.0.2.1' }) // evicted (least recently used of 3 in a list of 2)
  await app.inject({ url: '/', remoteAddress: '192.0.2.3' }) // still held
  t.equal(await scriptCalls(admin) - before, 1, 'only the evicted client went back to Redis')
})
