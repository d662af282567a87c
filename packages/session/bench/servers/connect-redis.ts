import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import RedisStore from 'connect-redis'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { routes, SECRET } from './shared.js'

/** what users pick today: @fastify/session + connect-redis on ioredis, @fastify/session's defaults except Secure (plain http here) */
export default async function build (env: NodeJS.ProcessEnv) {
  const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  const app = Fastify({ logger: false })
  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: SECRET,
    store: new RedisStore({ client: redis, prefix: `bench:connect-redis:${process.pid}:` }) as never,
    cookie: { secure: false, maxAge: 86_400_000 }
  })
  routes(app)
  app.addHook('onClose', async () => { await redis.quit() })
  return app
}
