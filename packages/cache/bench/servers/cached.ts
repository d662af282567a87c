import Fastify from 'fastify'
import { Redis } from 'ioredis'
import headroomCache from '../../src/index.js'
import { payload } from './payload.js'

/** The same route with response caching on: after the first request every request is an L1 hit. */
export default async function build (env: NodeJS.ProcessEnv) {
  const app = Fastify({ logger: false })
  const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  await new Promise((resolve) => redis.once('ready', resolve))
  app.addHook('onClose', async () => { redis.disconnect() })
  await app.register(headroomCache, { redis, prefix: env.CACHE_PREFIX, defaults: { ttl: 3_600_000 }, l1: { maxTtl: 3_600_000 } })
  app.get('/portfolio/summary', { config: { cache: true } }, async () => payload)
  return app
}
