import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { getHub } from '@headroom/core'
import headroomRateLimit from '../../src/index.js'
import { clientKey } from './client-key.js'

/**
 * @headroom/ratelimit: with Redis when RL_MODE=redis, else the in-process
 * limiter alone; RL_RESERVE=off turns token reservation off (one token per
 * request, the behaviour before it). With Redis, reports its Redis calls per
 * request on stderr when it closes (warm-up included).
 */
export default async function build (env: NodeJS.ProcessEnv) {
  const app = Fastify({ logger: false })
  let redis: Redis | undefined
  if (env.RL_MODE === 'redis') {
    redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    await new Promise((resolve) => (redis as Redis).once('ready', resolve))
    app.addHook('onClose', async () => { await redis?.quit() })
  }
  // A limit no benchmark run reaches: every request is counted, none refused.
  await app.register(headroomRateLimit, {
    ...(redis && { redis }),
    limit: 1_000_000_000,
    window: '1m',
    // The client is the x-client-id header in every variant (clientKey), so N keys are N clients;
    // counted in onRequest like @fastify/rate-limit.
    identify: clientKey,
    hook: 'onRequest',
    prefix: `${env.RL_PREFIX ?? 'bench:'}headroom:`,
    ...(env.RL_RESERVE === 'off' && { reserve: false })
  })
  if (redis) {
    app.addHook('onClose', async () => {
      const text = await getHub(app).registry.metrics()
      const sum = (re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0)
      const calls = sum(/^headroom_ratelimit_redis_calls_total\{[^}]*\} (\d+)$/gm)
      const requests = sum(/^headroom_ratelimit_requests_total\{[^}]*\} (\d+)$/gm)
      process.stderr.write(`  headroom-redis${env.RL_RESERVE === 'off' ? ' (reserve off)' : ''}: ${calls} Redis calls for ${requests} requests, ${(calls / Math.max(1, requests)).toFixed(3)} per request\n`)
    })
  }
  app.get('/', async () => ({ hello: 'world' }))
  return app
}
