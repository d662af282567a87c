import t from 'tap'
import { freePort, isolatedRedis } from '@headroom/testing'
import { inMemoryTracing } from '@headroom/testing/tracing'
import { buildApp, ready, redisClient } from './helpers.js'

// a real SDK in this process only: spans exported to memory
const tracing = inMemoryTracing()
t.teardown(() => tracing.shutdown())
t.beforeEach(() => tracing.reset())

const CLIENT = '203.0.113.77'

function noClient (t: { notOk: (v: unknown, m: string) => void }): void {
  t.notOk(tracing.strings().some((s) => s.includes(CLIENT)), 'no span carries the client\'s address or key')
}

t.test('Redis decides: each request\'s own span gets its verdict, even when one script call decided them together', async (t) => {
  const iso = await isolatedRedis(t)
  const app = await buildApp(t, { redis: await ready(redisClient(t, iso.url)), prefix: iso.prefix, limit: 2, window: '1m' })
  // same client, same event-loop turn: one batched script call for the three
  const codes = await Promise.all([0, 1, 2].map((i) => tracing.inSpan(`request-${i}`, async () =>
    (await app.inject({ url: '/', remoteAddress: CLIENT })).statusCode)))
  t.same(codes, [200, 200, 429])
  const attrs = [0, 1, 2].map((i) => tracing.named(`request-${i}`)[0]!.attributes)
  t.same(attrs.map((a) => a['headroom.ratelimit.decision']), ['allowed', 'allowed', 'refused'])
  t.same(attrs.map((a) => a['headroom.ratelimit.remaining']), [1, 0, 0])
  t.ok(attrs.every((a) => a['headroom.ratelimit.store'] === 'redis' && a['headroom.ratelimit.policy'] === 'default' && a['headroom.ratelimit.limit'] === 2))
  noClient(t)
})

t.test('without Redis the store is local; with Redis down, fallback (local) or unavailable (closed)', async (t) => {
  const local = await buildApp(t, { limit: 5 })
  await tracing.inSpan('local', () => local.inject({ url: '/', remoteAddress: CLIENT }))
  t.match(tracing.named('local')[0]!.attributes, { 'headroom.ratelimit.decision': 'allowed', 'headroom.ratelimit.store': 'local', 'headroom.ratelimit.remaining': 4 })

  const dead = `redis://127.0.0.1:${await freePort()}`
  const fallback = await buildApp(t, { redis: redisClient(t, dead), limit: 5, onStoreDown: 'local' })
  await tracing.inSpan('fallback', () => fallback.inject({ url: '/', remoteAddress: CLIENT }))
  t.match(tracing.named('fallback')[0]!.attributes, { 'headroom.ratelimit.decision': 'allowed', 'headroom.ratelimit.store': 'fallback' })

  const closed = await buildApp(t, { redis: redisClient(t, dead), limit: 5, onStoreDown: 'closed' })
  const res = await tracing.inSpan('closed', () => closed.inject({ url: '/', remoteAddress: CLIENT }))
  t.equal(res.statusCode, 503)
  t.match(tracing.named('closed')[0]!.attributes, { 'headroom.ratelimit.decision': 'unavailable', 'headroom.ratelimit.store': 'fallback' })
  noClient(t)
})
