import { defineScenario, type BenchRequest, type Check, type HttpScenario } from '@headroom/benchmarks'
import { Redis } from 'ioredis'
import { uniform, zipf } from './shapes.js'

const server = (name: string) => new URL(`./servers/${name}.ts`, import.meta.url)
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * GET / counted by a rate limiter, limits far above the run so none is
 * refused: the cost of counting. The client is the `x-client-id` header,
 * read by the same key function in every variant (servers/client-key.ts).
 * @fastify/rate-limit sends one EVALSHA per request; headroom sends one
 * script call per client per event-loop turn, however many of that client's
 * requests arrived in it — which is why the number of clients is the shape
 * that matters.
 */
function scenario (name: string, shape: string, requests: () => BenchRequest[], checks: Check[]): HttpScenario {
  return defineScenario({
    kind: 'http',
    name,
    description: `GET / counted by a rate limiter, ${shape}: bare Fastify, @fastify/rate-limit + Redis store, @headroom/ratelimit + Redis, @headroom/ratelimit local.`,
    baseline: 'bare',
    variants: [
      { name: 'bare', server: server('bare') },
      { name: '@fastify/rate-limit-redis', server: server('fastify-rate-limit-redis') },
      { name: 'headroom-redis', server: server('headroom'), env: { RL_MODE: 'redis' } },
      { name: 'headroom-local', server: server('headroom'), env: { RL_MODE: 'local' } }
    ],
    // autocannon starts every connection at the list's first request, but the
    // connections drift apart within the first moments: a server turn saw 1.00
    // requests per distinct client (measured, 50 connections, 1,000 clients)
    requests,
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
    checks
  })
}

export default [
  // The headline: 1,000 clients. Issue #18's goal is headroom Redis >= 1.5 x
  // @fastify/rate-limit's Redis store here; it measured 0.97 and 0.81 (two
  // full runs, 2026-12-01), so the check guards the lower level minus the
  // bare-vs-bare noise (0.9-1.1), not the goal (README: Benchmarks).
  scenario('ratelimit-1k-clients', '1,000 distinct clients (x-client-id), uniform', () => uniform(1_000), [
    { variant: 'headroom-redis', against: '@fastify/rate-limit-redis', min: 0.7 }
  ]),
  // reported, not checked: measured in quick runs only so far
  scenario('ratelimit-10k-clients', '10,000 distinct clients, uniform', () => uniform(10_000), []),
  scenario('ratelimit-zipf', '20,000 requests from 10,000 clients, Zipf s = 1.1 (top client ~15 %)', () => zipf(10_000, 1.1, 20_000), []),
  // secondary: every request from one client (the former `ratelimit` scenario), where batching helps most
  scenario('ratelimit-hot-key', 'one client for every request', () => [{ path: '/', headers: { 'x-client-id': 'hot' } }], [
    { variant: 'headroom-redis', against: '@fastify/rate-limit-redis', min: 1.3 },
    { variant: 'headroom-local', against: 'bare', min: 0.85 }
  ])
]
