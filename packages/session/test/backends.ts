import type { RedisClient } from '@headroom/core'
import { isolatedRedis, startRedis, startRedisCluster } from '@headroom/testing'
import type { Test } from 'tap'
import { clusterClient, redisClient } from './helpers.js'
import type { OutageFixture } from './suite.js'

function parseStats (info: string, into: Record<string, number>): void {
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
    if (m) into[m[1] as string] = (into[m[1] as string] ?? 0) + Number(m[2])
  }
}

/** the shared Redis, under a key prefix of this test's own */
export async function sharedBackend (t: Test) {
  const iso = await isolatedRedis(t)
  return { client: () => redisClient(t, iso.url), admin: redisClient(t, iso.url) as RedisClient, prefix: iso.prefix }
}

/** a redis-server of this test's own: command counts are this test's alone, and it may be killed */
export async function privateBackend (t: Test): Promise<OutageFixture & { pid: () => number | null }> {
  const server = await startRedis(t)
  const admin = redisClient(t, server.url)
  return {
    client: () => redisClient(t, server.url),
    admin,
    prefix: 'p:',
    async commandStats () {
      const out: Record<string, number> = {}
      parseStats(await admin.info('commandstats'), out)
      return out
    },
    async resetStats () { await admin.config('RESETSTAT') },
    kill: () => server.kill(),
    start: () => server.start(),
    pid: () => server.pid()
  }
}

/** a private 3-master Redis Cluster; killing it kills every node */
export async function clusterBackend (t: Test): Promise<OutageFixture> {
  const cluster = await startRedisCluster(t)
  const nodes = cluster.nodes.map((n) => redisClient(t, n.port))
  return {
    client: () => clusterClient(t, cluster.startupNodes),
    admin: clusterClient(t, cluster.startupNodes),
    prefix: 'c:',
    cluster: true,
    async commandStats () {
      const out: Record<string, number> = {}
      for (const n of nodes) parseStats(await n.info('commandstats'), out)
      return out
    },
    async resetStats () { await Promise.all(nodes.map((n) => n.config('RESETSTAT'))) },
    kill: async () => { await Promise.all(cluster.nodes.map((n) => n.kill())) },
    async start () {
      await Promise.all(cluster.nodes.map((n) => n.start()))
      await cluster.healthy(20_000)
    }
  }
}
