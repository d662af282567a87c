import t from 'tap'
import Fastify from 'fastify'
import fastifyCaching from '@fastify/caching'
import { Redis } from 'ioredis'
import headroomCache, { DEFAULT_DECORATOR, type Cache } from '../src/index.js'
import { redisClient } from './helpers.js'

// Typed by the application when it renames the decorator (README: "Next to @fastify/caching").
declare module 'fastify' {
  interface FastifyInstance { headroomCache: Cache }
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

t.test('@fastify/caching and @headroom/cache register together in one app with `decorator`', async (t) => {
  const redis: Redis = await redisClient(t, REDIS_URL)
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  await app.register(fastifyCaching, { privacy: fastifyCaching.privacy.PRIVATE, expiresIn: 60 })
  await app.register(headroomCache, { redis, prefix: `test:decorator:${process.pid}:`, decorator: 'headroomCache' })
  app.get('/etag', async (_request, reply) => {
    reply.etag('v1')
    return { ok: true }
  })
  await app.ready()

  // each plugin has its own decorator and both work
  t.equal(typeof app.cache.get, 'function', "fastify.cache is @fastify/caching's abstract-cache")
  t.equal(await app.headroomCache.wrap('k', async () => 41 + 1), 42)
  t.equal(await app.headroomCache.get('k'), 42)
  const res = await app.inject('/etag')
  t.equal(res.headers.etag, 'v1', "@fastify/caching's reply.etag still works")
  t.equal(res.headers['cache-control'], 'private, max-age=60')
  await app.headroomCache.delete('k')
})

t.test('without `decorator` the two collide at registration, as Fastify reports any duplicate decorator', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  app.register(fastifyCaching)
  app.register(headroomCache)
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_DEC_ALREADY_PRESENT', message: /cache/ })
  t.equal(DEFAULT_DECORATOR, 'cache')
})

t.test('the default name is fastify.cache; a bad name fails at register', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  await app.register(headroomCache)
  t.equal(typeof app.cache.wrap, 'function')
  const bad = Fastify()
  t.teardown(() => bad.close())
  bad.register(headroomCache, { decorator: 'my cache' })
  await t.rejects(async () => { await bad.ready() }, { code: 'HEADROOM_CACHE_INVALID_OPTION', message: /"decorator"/ })
})
