/**
 * The Redis a behaviour runs on, so the same suite runs on the shared Redis
 * (isolated by key prefix, or a private redis-server when it must be killed)
 * and on a real 3-master Redis Cluster (cluster.test.ts).
 */
import type { RedisClient } from '@headroom/core'
import { isolatedRedis, startRedis, startRedisCluster, uniqueId, type PrivateRedisCluster } from '@headroom/testing'
import { clusterClient, redisClient, type TestContext } from './helpers.js'

export interface Connection {
  /** a client configured as the README recommends, closed at teardown */
  client (): Promise<RedisClient>
  /** a key prefix of this test's own */
  prefix: string
}

export interface Killable extends Connection {
  /** every server of this connection, killed (SIGKILL, no data kept) */
  kill (): Promise<void>
  /** started again; resolves once commands are served */
  start (): Promise<void>
}

export interface Backend {
  readonly name: string
  connect (t: TestContext): Promise<Connection>
  /** servers of this test's own, which it may kill */
  killable (t: TestContext): Promise<Killable>
}

/** the shared Redis at REDIS_URL; a private redis-server when the test kills it */
export const standalone: Backend = {
  name: 'redis',
  async connect (t) {
    const r = await isolatedRedis(t)
    return { client: () => redisClient(t, r.url), prefix: r.prefix }
  },
  async killable (t) {
    const server = await startRedis(t)
    return { client: () => redisClient(t, server.url), prefix: 'p:', kill: () => server.kill(), start: () => server.start() }
  }
}

/** one private 3-master cluster for the connecting tests (a prefix each); a fresh one for each killing test */
export function clusterBackend (cluster: PrivateRedisCluster): Backend {
  return {
    name: 'cluster',
    async connect (t) {
      return { client: () => clusterClient(t, cluster.startupNodes), prefix: `${uniqueId('c')}:` }
    },
    async killable (t) {
      const own = await startRedisCluster(t)
      return {
        client: () => clusterClient(t, own.startupNodes),
        prefix: 'p:',
        kill: async () => { await Promise.all(own.nodes.map((n) => n.kill())) },
        async start () {
          await Promise.all(own.nodes.map((n) => n.start()))
          // after a restart of every node (nodes.conf keeps the slots): all nodes up, every slot served
          await own.healthy(30_000)
        }
      }
    }
  }
}
