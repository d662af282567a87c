import { isolatedRedis, redisClient, scanKeys, startRedis, startRedisCluster, uniqueId, type PrivateRedisCluster, type TestContext } from '@headroom/testing'
import type { Redis } from 'ioredis'

/**
 * Where the app's Redis lives in one run of the e2e suite: the environment
 * that says so, and a look at the keys each Redis holds so a test can tell
 * which Redis a use wrote to.
 */
export interface RedisBackend {
  /** REDIS_URL and/or SESSION_REDIS_URL / CACHE_REDIS_URL, and REDIS_KEY_PREFIX */
  env: Record<string, string>
  /** the keys under this run's prefix on the Redis of `use` */
  keys (use: 'sessions' | 'cache'): Promise<string[]>
}

export type BackendFactory = (t: TestContext) => Promise<RedisBackend>

const admin = (t: TestContext, port: number): Redis => redisClient(t, port, { maxRetriesPerRequest: 1 })

/** REDIS_URL on the shared Redis, under a prefix of the test's own */
export const standalone: BackendFactory = async (t) => {
  const redis = await isolatedRedis(t)
  const client = redis.client()
  return {
    env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix },
    keys: () => scanKeys([client], `${redis.prefix}*`)
  }
}

/** sessions and rate limits on the shared Redis, the cache on a redis-server of the test's own, no REDIS_URL */
export const split: BackendFactory = async (t) => {
  const sessions = await isolatedRedis(t)
  const cache = await startRedis(t)
  const sessionsClient = sessions.client()
  const cacheClient = admin(t, cache.port)
  return {
    env: { SESSION_REDIS_URL: sessions.url, CACHE_REDIS_URL: cache.url, REDIS_KEY_PREFIX: sessions.prefix },
    keys: (use) => scanKeys([use === 'sessions' ? sessionsClient : cacheClient], `${sessions.prefix}*`)
  }
}

/** The REDIS_URL form of a private cluster: every node a startup node. */
export function clusterUrl (cluster: PrivateRedisCluster): string {
  return `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
}

/**
 * REDIS_URL as a cluster: one private 3-master cluster per test file
 * (started by the first test that asks, torn down with `root`), a prefix
 * per test.
 */
export function onCluster (root: TestContext): BackendFactory {
  let started: Promise<{ cluster: PrivateRedisCluster, nodes: Redis[] }> | undefined
  return async () => {
    started ??= startRedisCluster(root, { masters: 3 }).then((cluster) => ({ cluster, nodes: cluster.nodes.map((n) => admin(root, n.port)) }))
    const { cluster, nodes } = await started
    const prefix = `${uniqueId('c')}:`
    return {
      env: { REDIS_URL: clusterUrl(cluster), REDIS_KEY_PREFIX: prefix },
      keys: () => scanKeys(nodes, `${prefix}*`)
    }
  }
}
