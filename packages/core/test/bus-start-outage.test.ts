import { startRedisCluster, waitFor, type PrivateRedis } from '@headroom/testing'
import { Cluster } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { InvalidationBus } from '../src/index.js'

/**
 * Regression (finance-api started while every node of its Redis Cluster was
 * frozen): the cluster client dropped the unreachable nodes while the bus's
 * SUBSCRIBE waited on one of them, each loss bumped the bus's epoch, and
 * when the node answered the acknowledged subscription was taken for a stale
 * one: the bus stayed disconnected for good, and the cache degraded with it.
 */
const noop = () => {}
const log = { debug: noop, info: noop, warn: noop, error: noop } as unknown as FastifyBaseLogger

t.test('a Redis Cluster frozen when the bus starts: the bus connects once the nodes answer', async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3 })
  const frozen: PrivateRedis[] = []
  t.teardown(() => { for (const n of frozen) try { process.kill(n.pid()!, 'SIGCONT') } catch {} })
  for (const n of cluster.nodes) {
    process.kill(n.pid()!, 'SIGSTOP')
    frozen.push(n)
  }
  const client = new Cluster(cluster.startupNodes, {
    enableOfflineQueue: false,
    clusterRetryStrategy: (times) => Math.min(times * 100, 2000),
    slotsRefreshInterval: 2000,
    slotsRefreshTimeout: 1000,
    redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 2000 }
  })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  let resyncs = 0
  const got: string[] = []
  const bus = new InvalidationBus<{ k: string }>(client, {
    channel: 'bus-start-outage',
    name: 'test',
    log,
    onMessage: (m) => { got.push(m.k) },
    onResync: () => { resyncs++ }
  })
  t.teardown(() => bus.close())
  await bus.start(500)
  t.notOk(bus.connected, 'not connected while the nodes are frozen')
  // long enough for the cluster client to give up on the nodes at least once (slotsRefreshTimeout 1 s)
  await new Promise((resolve) => setTimeout(resolve, 3000))

  for (const n of frozen.splice(0)) process.kill(n.pid()!, 'SIGCONT')
  await cluster.healthy()
  await waitFor('the bus to connect', () => bus.connected, 30_000, 100)
  t.ok(resyncs >= 1, 'and the copies made while it was down are dropped (resync)')

  // and it delivers: a message published on the cluster reaches the handler
  await waitFor('the cluster client to be ready', () => client.status === 'ready', 30_000, 100)
  await client.publish('bus-start-outage', bus.message({ k: 'x' }))
  await waitFor('the message to arrive', () => got.includes('x'), 10_000, 50)
  t.pass('delivered')
})
