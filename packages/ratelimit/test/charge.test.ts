import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { isolatedRedis, startRedis, waitFor } from '@headroom/testing'
import { errors, type HeadroomRateLimitOptions } from '../src/index.js'
import { buildApp, ready, redisClient } from './helpers.js'

const policies = { failures: { limit: 3, window: '60s' } }

/** The count a failed-login counter needs: peek without counting, charge, stop at the limit, reset. */
async function contract (t: Test, a: FastifyInstance, b: FastifyInstance, source: string) {
  const rl = a.headroomRateLimit
  t.match(await rl.peek('failures', 'alice'), { count: 0, remaining: 3, blocked: false, source }, 'nothing counted yet')
  t.match(await rl.peek('failures', 'alice'), { count: 0 }, 'peek counts nothing')
  t.match(await rl.charge('failures', 'alice'), { count: 1, counted: 1, blocked: false })
  t.match(await b.headroomRateLimit.charge('failures', 'alice'), { count: 2, blocked: false }, 'the other instance adds to the same count')
  const third = await rl.charge('failures', 'alice')
  t.match(third, { count: 3, remaining: 0, blocked: true, limit: 3 })
  t.ok(third.retryAfterS >= 59 && third.retryAfterS <= 60, `retry in ${third.retryAfterS} s, never more than the window`)
  t.match(await rl.charge('failures', 'alice', 5), { count: 3, counted: 0, blocked: true }, 'the count stops at the limit')
  t.match(await b.headroomRateLimit.peek('failures', 'alice'), { count: 3, blocked: true })
  t.match(await rl.peek('failures', 'bob'), { count: 0 }, 'keys are separate')
  await b.headroomRateLimit.reset('failures', 'alice')
  t.match(await rl.peek('failures', 'alice'), { count: 0, blocked: false }, 'reset by either instance')
  t.throws(() => rl.peek('nope', 'alice'), errors.InvalidOption, 'an unknown policy is a programming error, thrown at once')
  t.throws(() => rl.charge('failures', 'alice', -1), errors.InvalidOption)
}

t.test('peek, charge and reset on Redis, shared by two instances', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const options: HeadroomRateLimitOptions = { redis, prefix, policies }
  await contract(t, await buildApp(t, options), await buildApp(t, options), 'redis')
})

t.test('peek, charge and reset without Redis (one instance: the same app twice)', async (t) => {
  const app = await buildApp(t, { policies })
  await contract(t, app, app, 'local')
})

t.test('with Redis down: counted locally (onStoreDown local), refused (closed), or not counted (open)', async (t) => {
  const server = await startRedis(t)
  const redis = await ready(redisClient(t, server.url))
  await server.stop()
  await waitFor('client noticed', () => redis.status !== 'ready')
  const local = await buildApp(t, { redis, policies })
  await contract(t, local, local, 'local')

  const closed = await buildApp(t, { redis, policies, onStoreDown: 'closed' })
  await t.rejects(closed.headroomRateLimit.charge('failures', 'alice'), errors.StoreUnavailable, 'closed: the caller decides (e.g. 503)')
  const open = await buildApp(t, { redis, policies, onStoreDown: 'open' })
  t.match(await open.headroomRateLimit.charge('failures', 'alice', 10), { blocked: false, source: 'open' }, 'open: nothing counted, nothing blocked')
  // reset still forgets what this process counted
  await local.headroomRateLimit.charge('failures', 'carol')
  await local.headroomRateLimit.reset('failures', 'carol')
  t.match(await local.headroomRateLimit.peek('failures', 'carol'), { count: 0 })
})

t.test('address(): the client address, IPv6 by /64, whatever identify says', async (t) => {
  const app = await buildApp(t, { identify: () => 'user-1' }, (app) => {
    app.get('/addr', async (request) => ({ address: app.headroomRateLimit.address(request) }))
  })
  const of = async (remoteAddress: string) => (await app.inject({ url: '/addr', remoteAddress })).json().address
  t.equal(await of('203.0.113.7'), 'ip:203.0.113.7')
  t.equal(await of('2001:db8:1:2::1'), await of('2001:db8:1:2:ffff::9'), 'one /64, one counter')
  t.not(await of('2001:db8:1:2::1'), await of('2001:db8:1:3::1'), 'another /64, another counter')
})
