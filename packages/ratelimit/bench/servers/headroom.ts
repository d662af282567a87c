import Fastify from 'fastify'
import { Redis } from 'ioredis'
import headroomRateLimit from '../../src/index.js'
import { clientKey } from './client-key.js'

/** @headroom/ratelimit: with Redis when RL_MODE=redis, else the in-process limiter alone. */
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
    prefix: `${env.RL_PREFIX ?? 'bench:'}headroom:`
  })
  app.get('/', async () => ({ hello: 'world' }))
  return app
}
