import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { headroomSession } from '../../src/index.js'
import { routes, SECRET } from './shared.js'

/** @headroom/session with hot sessions off: every read goes to Redis (what the hot sessions are measured against) */
export default async function build (env: NodeJS.ProcessEnv) {
  const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  const app = Fastify({ logger: false })
  // plain http on loopback: 'auto' sends the cookie without Secure there (true would never send it)
  await app.register(headroomSession, { redis, secret: SECRET, keyPrefix: `bench:session:${process.pid}:`, hot: false, cookie: { secure: 'auto' } })
  routes(app)
  app.addHook('onClose', async () => { await redis.quit() })
  return app
}
