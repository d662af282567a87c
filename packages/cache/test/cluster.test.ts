import t from 'tap'
import { startRedisCluster } from '@headroom/testing'
import { clusterBackend } from './backends.js'
import { coalescing } from './suites/coalescing.js'
import { httpCache } from './suites/http.js'
import { invalidation } from './suites/invalidation.js'
import { isolation } from './suites/isolation.js'
import { l1Bound } from './suites/l1-bound.js'
import { outage } from './suites/outage.js'
import { routeCoalescing } from './suites/route-coalescing.js'
import { staleness } from './suites/staleness.js'

// the whole suite against a private 3-master Redis Cluster: a key prefix per test,
// and a cluster of its own for each test that kills every node
t.test('the same suite against a real 3-master Redis Cluster', async (t) => {
  const backend = clusterBackend(await startRedisCluster(t, { masters: 3 }))
  await t.test('coalescing', async (t) => coalescing(t, backend))
  await t.test('invalidation', async (t) => invalidation(t, backend))
  await t.test('isolation', async (t) => isolation(t, backend))
  await t.test('staleness', async (t) => staleness(t, backend))
  await t.test('http', async (t) => httpCache(t, backend))
  await t.test('route coalescing', async (t) => routeCoalescing(t, backend))
  await t.test('l1 bound', async (t) => l1Bound(t, backend))
  await t.test('outage of every node', async (t) => outage(t, backend))
})
