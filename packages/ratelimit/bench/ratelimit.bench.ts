import { defineScenario } from '@headroom/benchmarks'
import { Redis } from 'ioredis'

const server = (name: string) => new URL(`./servers/${name}.ts`, import.meta.url)
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * Every request counted against one client (autocannon's 50 connections
 * share 127.0.0.1), limits far above the run so none is refused: the cost of
 * counting. @fastify/rate-limit sends one EVALSHA per request; headroom sends
 * one script call per client per event-loop turn, however many of that
 * client's requests arrived in it.
 */
export default defineScenario({
  kind: 'http',
  name: 'ratelimit',
  description: 'GET / counted by a rate limiter: bare Fastify, @fastify/rate-limit + Redis store, @headroom/ratelimit + Redis, @headroom/ratelimit local.',
  baseline: 'bare',
  variants: [
    { name: 'bare', server: server('bare') },
    { name: '@fastify/rate-limit-redis', server: server('fastify-rate-limit-redis') },
    { name: 'headroom-redis', server: server('headroom'), env: { RL_MODE: 'redis' } },
    { name: 'headroom-local', server: server('headroom'), env: { RL_MODE: 'local' } }
  ],
  requests: () => [{ path: '/' }],
  async setup () {
    const prefix = `bench:${process.pid}:${Date.now()}:`
    return {
      env: { RL_PREFIX: prefix, REDIS_URL: redisUrl },
      async teardown () {
        const redis = new Redis(redisUrl)
        let cursor = '0'
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
          cursor = next
          if (keys.length > 0) await redis.unlink(...keys)
        } while (cursor !== '0')
        await redis.quit()
      }
    }
  },
  checks: [
    { variant: 'headroom-redis', against: '@fastify/rate-limit-redis', min: 1.3 },
    { variant: 'headroom-local', against: 'bare', min: 0.85 }
  ]
})
