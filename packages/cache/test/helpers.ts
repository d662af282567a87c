import type { FastifyInstance } from 'fastify'
import type { Cluster, ClusterOptions, Redis } from 'ioredis'
import { getHub } from '@headroom/core'
import { APP_REDIS_OPTIONS, clusterClient as testingClusterClient, redisClient as testingRedisClient, testApp, waitFor, whenReady, type TestContext } from '@headroom/testing'
import headroomCache, { kEngine, type CacheOptions } from '../src/index.js'
import type { Engine } from '../src/engine.js'

export type { TestContext }

/** A client configured as the README asks: no offline queue, one retry; ready, closed at teardown. */
export function redisClient (t: TestContext, url: string): Promise<Redis> {
  return whenReady(testingRedisClient(t, url, APP_REDIS_OPTIONS))
}

/**
 * The Cluster client options the README recommends: nothing waits in an
 * offline queue, one retry, reads from masters (a replica may still hold an
 * entry that was invalidated), and short retry delays so a failover is seen
 * within the node timeout.
 */
export const CLUSTER_OPTIONS: ClusterOptions = {
  enableOfflineQueue: false,
  scaleReads: 'master',
  retryDelayOnFailover: 100,
  retryDelayOnClusterDown: 100,
  retryDelayOnTryAgain: 100,
  slotsRefreshTimeout: 1000,
  clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
  redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 1000 }
}

export function clusterClient (t: TestContext, startupNodes: Array<{ host: string, port: number }>): Promise<Cluster> {
  return whenReady(testingClusterClient(t, startupNodes, CLUSTER_OPTIONS))
}

export async function buildApp (t: TestContext, options: CacheOptions, setup?: (app: FastifyInstance) => void | Promise<void>): Promise<FastifyInstance> {
  const app = testApp(t, { logger: false })
  await app.register(headroomCache, options)
  await setup?.(app)
  await app.ready()
  // the bus subscribes in the background after a slow start (a loaded machine): tests start fully connected
  await waitFor('the invalidation bus subscribed', async () => engineOf(app).bus?.connected ?? true, 10_000, 10)
  return app
}

export function engineOf (app: FastifyInstance): Engine {
  return (app.cache as unknown as Record<symbol, Engine>)[kEngine]!
}

export async function metricValue (app: FastifyInstance, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = getHub(app).registry.getSingleMetric(name)
  if (!metric) return 0
  const { values } = await metric.get()
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((sum, v) => sum + v.value, 0)
}

export async function health (app: FastifyInstance): Promise<string> {
  const check = getHub(app).checks().find((c) => c.name === 'redis:cache')!
  return (await check.check()).status
}
