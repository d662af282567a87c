import t from 'tap'
import { startRedis, waitFor } from '@headroom/testing'
import { buildApp, metricValue, redisClient } from './helpers.js'

// WAIT gets half of it: room for a replica's acknowledgement on a loaded
// machine (with 1000 ms, 500 ms for WAIT fell short once at load average 10+)
const COMMAND_TIMEOUT_MS = 4000

t.test('waitForReplicas: an invalidation a replica acknowledged is done; one no replica holds is queued for replay', async (t) => {
  const master = await startRedis(t)
  const client = await redisClient(t, master.url)
  const app = await buildApp(t, { redis: client, waitForReplicas: 1, commandTimeoutMs: COMMAND_TIMEOUT_MS })

  // no replica yet: WAIT answers 0 after its timeout, so the delete is not counted as durable
  const started = performance.now()
  await app.cache.delete('quote:1')
  const elapsed = performance.now() - started
  t.equal(app.cache.stats().pendingReplay, 1, 'queued for replay')
  t.ok(elapsed < COMMAND_TIMEOUT_MS + 1000, `resolved in ${elapsed.toFixed(0)} ms, bounded by the command timeout`)
  t.equal(await metricValue(app, 'headroom_cache_l2_errors_total', { op: 'replicate' }), 1)

  await startRedis(t, { args: ['--replicaof', '127.0.0.1', String(master.port)] })
  await waitFor('the replica in sync', async () => (await client.info('replication')).includes('state=online'), 10_000)
  await waitFor('the replay went through', async () => app.cache.stats().pendingReplay === 0, 5000)
  await app.cache.invalidateTags(['fx'])
  await app.cache.set('quote:2', { v: 2 })
  t.equal(app.cache.stats().pendingReplay, 0, 'a replica holds them: nothing queued')
  t.equal(await metricValue(app, 'headroom_cache_l2_errors_total', { op: 'replicate' }), 1, 'no new shortfall')
})
