import fastifyCookie from '@fastify/cookie'
import fastifySession, { type FastifySessionOptions } from '@fastify/session'
import RedisStore from 'connect-redis'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { routes, SECRET } from './shared.js'

/** @fastify/session + connect-redis on ioredis with `extra` session options over the secret, store and cookie */
export async function connectRedisApp (env: NodeJS.ProcessEnv, name: string, extra: Partial<FastifySessionOptions> = {}) {
  const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  const app = Fastify({ logger: false })
  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: SECRET,
    store: new RedisStore({ client: redis, prefix: `bench:${name}:${process.pid}:` }) as never,
    cookie: { secure: false, maxAge: 86_400_000 },
    ...extra
  })
  routes(app)
  app.addHook('onClose', async () => { await redis.quit() })
  return app
}

/**
 * What users pick today, as shipped: @fastify/session's defaults except
 * Secure (plain http here), so `rolling: true` (a full SET and a Set-Cookie
 * on every request) and `saveUninitialized: true`.
 */
export default async function build (env: NodeJS.ProcessEnv) {
  return connectRedisApp(env, 'connect-redis')
}
