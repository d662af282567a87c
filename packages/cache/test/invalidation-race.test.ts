import t from 'tap'
import { startRedis, sleep } from '@headroom/testing'
import { Redis } from 'ioredis'
import { buildApp, redisClient } from './helpers.js'

/**
 * An acknowledged invalidation is never followed by the old value, even when
 * a read overtakes it on its way to Redis or started before it.
 *
 * Seen in the cache failover test (CI): a fresh cluster node did not know the
 * DELETE script yet, so EVALSHA failed with NOSCRIPT and the script was sent
 * again; a read sent in between found the old entry in Redis and, having
 * started after the L1 drop, put it back into L1, where it stayed after the
 * delete was acknowledged.
 */
t.test('a read that reaches Redis before the delete does (NOSCRIPT reload) leaves nothing in L1 once the delete is acknowledged', async (t) => {
  const redis = await startRedis(t)
  const app = await buildApp(t, { redis: await redisClient(t, redis.url) })
  let version = 1
  const read = (): Promise<{ v: number }> => app.cache.wrap('quote', () => ({ v: version }))
  t.same(await read(), { v: 1 }, 'v1 in L1 and L2')
  await sleep(50) // the background L2 write
  const admin = new Redis(redis.port, '127.0.0.1')
  t.teardown(() => admin.disconnect())
  await admin.script('FLUSH')

  version = 2
  const deleted = app.cache.delete('quote')
  // sent after EVALSHA, run by Redis before the EVAL that follows NOSCRIPT: it sees v1
  const overtaking = read()
  await deleted
  t.same(await overtaking, { v: 1 }, 'the overtaking read saw v1 (it ran before the delete: allowed)')
  t.same(await read(), { v: 2 }, 'a read after the acknowledgement gets v2, not the v1 the overtaking read saw')
})

t.test('a read that starts after an acknowledged delete never joins a flight that started before it', async (t) => {
  const redis = await startRedis(t)
  const app = await buildApp(t, { redis: await redisClient(t, redis.url) })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let version = 1
  const slow = app.cache.wrap('report', async () => {
    const v = version
    await gate
    return { v }
  })
  await sleep(20) // the factory is running with v1
  version = 2
  await app.cache.delete('report')
  const after = app.cache.wrap('report', async () => ({ v: version }))
  release()
  t.same(await slow, { v: 1 }, 'the read that started before the delete gets what its factory produced')
  t.same(await after, { v: 2 }, 'the read that started after the acknowledgement does not share it')
  t.same(await app.cache.wrap('report', async () => ({ v: version })), { v: 2 }, 'and v1 was not cached')
})
