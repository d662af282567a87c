import { request as httpRequest, Agent } from 'node:http'
import { defineScenario, median, startServer, type CustomRow } from '@headroom/benchmarks'
import { startRedis } from '@headroom/testing'
import { Redis } from 'ioredis'
import { manyUsersRead, USERS } from './servers/shared.js'

const CONCURRENCY = 50

type Read = { path: string, headers: Record<string, string> }

/** sends `count` of `reads`, in turn, over 50 keep-alive connections; returns the wall time in ms */
async function load (url: string, reads: Read[], count: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  let left = count
  let next = 0
  const one = () => new Promise<void>((resolve, reject) => {
    const { path, headers } = reads[next++ % reads.length] as Read
    const target = new URL(path, url)
    const req = httpRequest(target, { agent, headers }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`${target.href}: ${res.statusCode}`))
      res.resume()
      res.on('end', resolve)
    })
    req.on('error', reject)
    req.end()
  })
  const start = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (left-- > 0) await one()
  }))
  agent.destroy()
  return performance.now() - start
}

async function serverCpu (url: string): Promise<number> {
  const res = await fetch(`${url}/__cpu`)
  const { user, system } = await res.json() as { user: number, system: number }
  return user + system
}

async function redisCpu (redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0)
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
}

/**
 * The same authenticated reads of 1,000 users as session-users, measured in CPU time per
 * request (the server process, and a private Redis of the scenario's own)
 * instead of wall-clock throughput. On a shared machine CPU time is what a
 * request costs whatever else runs; on a server that is CPU-bound, throughput
 * is its inverse.
 */
export default defineScenario({
  kind: 'custom',
  name: 'session-read-cpu',
  description: `CPU µs per authenticated read of ${USERS} logged-in users (server + Redis): @headroom/session vs @fastify/session + connect-redis as shipped and tuned`,
  async run ({ quick, log }) {
    const cleanups: Array<() => unknown> = []
    const t = { teardown: (fn: () => unknown) => { cleanups.push(fn) } }
    try {
      const redisServer = await startRedis(t)
      const redis = new Redis(redisServer.url)
      cleanups.push(() => redis.disconnect())
      const env = { REDIS_URL: redisServer.url }
      const names = ['connect-redis', 'connect-redis-tuned', 'headroom'] as const
      const servers = {
        'connect-redis': await startServer(new URL('./servers/connect-redis.ts', import.meta.url), env),
        'connect-redis-tuned': await startServer(new URL('./servers/connect-redis-tuned.ts', import.meta.url), env),
        headroom: await startServer(new URL('./servers/headroom.ts', import.meta.url), env)
      }
      for (const s of Object.values(servers)) cleanups.push(() => s.close())
      const reads = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await manyUsersRead(servers[n])]))) as Record<typeof names[number], Read[]>

      const count = quick ? 5000 : 30_000
      const rounds = quick ? 3 : 5
      const samples: Record<string, { server: number[], redis: number[], rps: number[] }> = {}
      for (const n of names) {
        samples[n] = { server: [], redis: [], rps: [] }
        await load(servers[n].url, reads[n], count / 5) // warm-up
      }
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? names : [...names].reverse()
        for (const n of order) {
          const s0 = await serverCpu(servers[n].url)
          const r0 = await redisCpu(redis)
          const ms = await load(servers[n].url, reads[n], count)
          const s1 = await serverCpu(servers[n].url)
          const r1 = await redisCpu(redis)
          const sample = samples[n] as { server: number[], redis: number[], rps: number[] }
          sample.server.push((s1 - s0) / count)
          sample.redis.push((r1 - r0) / count)
          sample.rps.push(count / (ms / 1000))
          log(`  round ${round + 1}/${rounds} ${n}: server ${((s1 - s0) / count).toFixed(1)} µs, redis ${((r1 - r0) / count).toFixed(1)} µs per request`)
        }
      }
      const row = (n: string): CustomRow => {
        const s = samples[n] as { server: number[], redis: number[], rps: number[] }
        const server = median(s.server)
        const red = median(s.redis)
        return { variant: n, 'server µs/req': Number(server.toFixed(1)), 'redis µs/req': Number(red.toFixed(1)), 'total µs/req': Number((server + red).toFixed(1)), 'wall req/s': Math.round(median(s.rps)) }
      }
      const rows = names.map(row)
      const ours = rows[names.indexOf('headroom')] as CustomRow
      const ratio = (anchor: CustomRow, column: string) => ((anchor[column] as number) / (ours[column] as number)).toFixed(2)
      return {
        rows,
        // a diagnostic, not the claim: the throughput checks are session-users';
        // this one says where the CPU goes
        notes: [
          ...rows.filter((r) => r !== ours).map((anchor) =>
            `CPU-bound throughput ratio headroom / ${anchor.variant}: ${ratio(anchor, 'total µs/req')} counting server + Redis CPU, ${ratio(anchor, 'server µs/req')} counting the server alone.`),
          `${count} requests per round over ${CONCURRENCY} keep-alive connections, ${rounds} alternating rounds, medians.`,
          'Throughput of a CPU-bound server is the inverse of its CPU per request; wall req/s is shown but depends on whatever else the machine runs.'
        ]
      }
    } finally {
      for (const fn of cleanups.reverse()) await fn()
    }
  }
})
