import t from 'tap'
import { clusterClient, startRedisCluster, whenReady } from '@headroom/testing'
import { getHub } from '@headroom/core'
import { buildApp, burst, count } from './helpers.js'

// What these tests prove is exactness across shards and instances, not the
// timeout: at a load average of 12, 144 concurrent calls saw a 250 ms command
// timeout expire and the fallback decide (store-down.test.ts covers that path).
const SLOW_MACHINE_TIMEOUT_MS = 3000

t.test('on a 3-master Redis Cluster: one key per call, exact limits for clients on every shard, shared by instances', async (t) => {
  const cluster = await startRedisCluster(t)
  const client = await whenReady(clusterClient(t, cluster.startupNodes, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } }))
  const apps = await Promise.all([1, 2].map(() => buildApp(t, { redis: client, limit: 7, window: '1m', commandTimeoutMs: SLOW_MACHINE_TIMEOUT_MS })))
  const clients = Array.from({ length: 12 }, (_, i) => `192.0.2.${i + 1}`)
  const results = await Promise.all(clients.map(async (ip) => {
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) =>
      (apps[i % 2] as typeof apps[0]).inject({ url: '/', remoteAddress: ip })))
    return responses.map((r) => r.statusCode)
  }))
  for (const [i, codes] of results.entries()) {
    t.same([count(codes, 200), count(codes, 429)], [7, 5], `client ${clients[i]}: exactly 7 of 12`)
  }
  const slots = new Set(await Promise.all(clients.map((ip) => client.cluster('KEYSLOT', `headroom:rl:default:ip:${ip}`))))
  t.ok(slots.size > 1, `the keys span ${slots.size} slots`)
  const masters = new Set<string>()
  for (const node of client.nodes('master')) {
    const keys = await node.keys('headroom:rl:default:*')
    if (keys.length > 0) masters.add(`${node.options.host}:${node.options.port}`)
  }
  t.ok(masters.size >= 2, `and ${masters.size} masters hold them`)
  t.equal(apps[0]?.headroomRateLimit.mode, 'redis', 'no fallback was needed')
  t.notMatch(await getHub(apps[0] as typeof apps[0]).registry.metrics(), /headroom_ratelimit_fallback_total\{/, 'no request decided without Redis')
  t.same(await burst(apps, 2), [200, 200], 'the local client (127.0.0.1) has its own fresh quota')
})

t.test('on a 3-master Redis Cluster: peek, charge and reset for keys on every shard, shared by instances', async (t) => {
  const cluster = await startRedisCluster(t)
  const client = await whenReady(clusterClient(t, cluster.startupNodes, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } }))
  const policies = { failures: { limit: 3, window: '1m' } }
  const [a, b] = await Promise.all([1, 2].map(() => buildApp(t, { redis: client, policies, commandTimeoutMs: SLOW_MACHINE_TIMEOUT_MS }))) as [Awaited<ReturnType<typeof buildApp>>, Awaited<ReturnType<typeof buildApp>>]
  const accounts = Array.from({ length: 12 }, (_, i) => `a:user${i}@example.com`)
  for (const key of accounts) {
    await a.headroomRateLimit.charge('failures', key)
    await b.headroomRateLimit.charge('failures', key, 2)
  }
  const usages = await Promise.all(accounts.map((key) => a.headroomRateLimit.peek('failures', key)))
  t.ok(usages.every((u) => u.blocked && u.count === 3 && u.source === 'redis'), 'every key reached its limit through both instances, counted in Redis')
  const slots = new Set(await Promise.all(accounts.map((key) => client.cluster('KEYSLOT', `headroom:rl:failures:${key}`))))
  t.ok(slots.size > 1, `the keys span ${slots.size} slots`)
  await Promise.all(accounts.map((key) => b.headroomRateLimit.reset('failures', key)))
  const after = await Promise.all(accounts.map((key) => a.headroomRateLimit.peek('failures', key)))
  t.ok(after.every((u) => u.count === 0), 'reset reaches every shard')
})
