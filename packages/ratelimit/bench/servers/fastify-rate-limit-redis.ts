import Fastify from 'fastify'
import fastifyRateLimit from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import { clientKey } from './client-key.js'

/** What users pick today: @fastify/rate-limit with its built-in Redis store (one EVALSHA per request). */
export default async function build (env: NodeJS.ProcessEnv) {
  const app = Fastify({ logger: false })
  const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  await new Promise((resolve) => redis.once('ready', resolve))
  app.addHook('onClose', async () => { await redis.quit() })
  // A limit no benchmark run reaches: every request is counted, none refused.
  // The client is the x-client-id header in every variant (clientKey), so N keys are N clients.
  await app.register(fastifyRateLimit, {
    redis,
    max: 1_000_000_000,
    timeWindow: 60_000,
    nameSpace: `${env.RL_PREFIX ?? 'bench:'}frl:`,
    keyGenerator: clientKey
  })
  app.get('/', async () => ({ hello: 'world' }))
  return app
}
