import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { freePort, redisUrl } from '@headroom/testing'
import { errors, getHub, isRedisClient, useRedis, type RedisSeam, type UseRedisOptions } from '../src/index.js'

function listeners (client: Redis): Record<string, number> {
  return Object.fromEntries(client.eventNames().map((e) => [String(e), client.listenerCount(e)]))
}

async function connected (t: { teardown: (fn: () => unknown) => void }): Promise<Redis> {
  const client = new Redis(redisUrl(), { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  if (client.status !== 'ready') await once(client, 'ready')
  return client
}

/** a plugin attached to Redis the way every headroom plugin is */
function seamPlugin (options: Partial<UseRedisOptions> & { option?: unknown }, seen: { seam?: RedisSeam }) {
  return fp(async (fastify: FastifyInstance) => {
    seen.seam = useRedis(fastify, {
      name: 'demo',
      owner: '@headroom/demo',
      check: async ({ ready }) => ready ? { status: 'pass' } : { status: 'warn' },
      ...options
    } as UseRedisOptions)
  }, { name: 'demo' })
}

t.test('the redis option: one check, one message, core\'s error', async (t) => {
  for (const bad of ['redis://localhost', {}, { get: () => null }, null, 42]) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(seamPlugin({ option: bad }, {}))
    const err = await app.ready().then(() => null, (e: Error) => e)
    t.ok(err instanceof errors.InvalidOption, `${JSON.stringify(bad)}: InvalidOption`)
    t.equal((err as { code?: string } | null)?.code, 'HEADROOM_CORE_INVALID_OPTION')
    t.match(err?.message, 'Invalid @headroom/demo option "redis": expected an ioredis Redis or Cluster client')
  }
  const client = await connected(t)
  t.ok(isRedisClient(client), 'an ioredis client passes')
  t.ok(isRedisClient(client.duplicate({ lazyConnect: true })), 'so does an unconnected one')
})

t.test('the client: the option, else fastify.redis, else none', async (t) => {
  const client = await connected(t)
  const shared = await connected(t)
  const cases: Array<[string, unknown, Redis | undefined, Redis | null]> = [
    ['option', client, shared, client],
    ['fastify.redis', undefined, shared, shared],
    ['none', undefined, undefined, null]
  ]
  for (const [label, option, decorated, expected] of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    if (decorated) app.decorate('redis', decorated)
    const seen: { seam?: RedisSeam } = {}
    await app.register(seamPlugin({ option, withoutClient: 'memory only' }, seen))
    await app.ready()
    t.equal(seen.seam?.client, expected, `${label}: the client`)
    t.equal(seen.seam?.guard === null, expected === null, `${label}: a guard only with a client`)
    t.equal(seen.seam?.ready, expected !== null, `${label}: ready with a connected client`)
    const check = getHub(app).checks().find((c) => c.name === 'redis:demo')
    t.equal(check?.critical, false, `${label}: a non-critical check by default`)
    t.equal(check?.owner, '@headroom/demo')
    t.same(await check?.check(), expected ? { status: 'pass' } : { status: 'pass', output: 'memory only' }, `${label}: the check`)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(seamPlugin({}, {}))
  await app.ready()
  t.same(getHub(app).checks(), [], 'without a client and without `withoutClient`, no check')
})

t.test('ready: false while the client is not connected or the circuit is open', async (t) => {
  // a port nothing listens on: the client never becomes ready
  const down = new Redis({ port: await freePort(), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 1000 })
  down.on('error', () => {})
  t.teardown(() => down.disconnect())
  const app = Fastify()
  t.teardown(() => app.close())
  const seen: { seam?: RedisSeam } = {}
  await app.register(seamPlugin({ option: down }, seen))
  await app.ready()
  t.equal(seen.seam?.ready, false, 'not connected')
  t.same(await getHub(app).checks()[0]?.check(), { status: 'warn' }, 'the plugin\'s check says how it reports')

  const client = await connected(t)
  const up = Fastify()
  t.teardown(() => up.close())
  const seenUp: { seam?: RedisSeam } = {}
  await up.register(seamPlugin({ option: client, failureThreshold: 1, resetTimeoutMs: 60_000, maxResetTimeoutMs: 60_000 }, seenUp))
  await up.ready()
  t.equal(seenUp.seam?.ready, true)
  await seenUp.seam?.guard?.run(() => Promise.reject(new Error('boom'))).catch(() => {})
  t.equal(seenUp.seam?.ready, false, 'circuit open')
})

t.test('on close: the guard stops listening and the check goes, 1,000 times over on one client', async (t) => {
  const client = await connected(t)
  const before = listeners(client)
  const left: string[] = []
  for (let i = 0; i < 1000; i++) {
    const app = Fastify()
    await app.register(seamPlugin({ option: client }, {}))
    await app.ready()
    const hub = getHub(app)
    if (i === 0) t.equal(client.listenerCount('ready'), (before.ready ?? 0) + 1, 'the guard listens while registered')
    await app.close()
    left.push(...hub.checks().map((c) => c.name))
  }
  t.same(left, [])
  t.same(listeners(client), before)
})

t.test('a duplicate check name fails before the guard listens to the client', async (t) => {
  const client = await connected(t)
  const before = listeners(client)
  const app = Fastify()
  t.teardown(() => app.close())
  getHub(app).addCheck({ name: 'redis:demo', check: async () => ({ status: 'pass' }) })
  app.register(seamPlugin({ option: client }, {}))
  await t.rejects(async () => { await app.ready() }, errors.DuplicateCheck)
  t.same(listeners(client), before)
})
