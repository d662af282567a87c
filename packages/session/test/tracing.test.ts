import t from 'tap'
import { freePort, isolatedRedis } from '@headroom/testing'
import { inMemoryTracing } from '@headroom/testing/tracing'
import { buildApp, idOf, login, me, redisClient } from './helpers.js'

// a real SDK in this process only: spans exported to memory
const tracing = inMemoryTracing()
t.teardown(() => tracing.shutdown())
t.beforeEach(() => tracing.reset())

const USER = 'alice-77810'

function noSecrets (t: { notOk: (v: unknown, m: string) => void }, cookie: string): void {
  const strings = tracing.strings()
  for (const secret of [USER, idOf(cookie), cookie.slice(cookie.indexOf('=') + 1)]) {
    t.notOk(strings.some((s) => s.includes(secret)), 'no span carries the user, the session id or the cookie')
  }
}

t.test('load from Redis, save and destroy: spans under the request, with where and whether, never the id or the user', async (t) => {
  const iso = await isolatedRedis(t)
  const app = await buildApp(t, { redis: redisClient(t, iso.url), keyPrefix: iso.prefix })
  const cookie = await tracing.inSpan('login', () => login(app, USER))
  const save = tracing.named('session.save')[0]!
  t.equal(tracing.parentOf(save)?.name, 'login')
  t.match(save.attributes, { 'headroom.session.store': 'redis', 'headroom.session.fallback': false, 'headroom.session.new': true })
  await tracing.inSpan('me', async () => {
    t.equal((await me(app, cookie)).body.userId, USER)
  })
  const load = tracing.named('session.load')[0]!
  t.equal(tracing.parentOf(load)?.name, 'me')
  t.match(load.attributes, { 'headroom.session.source': 'redis', 'headroom.session.found': true, 'headroom.session.fallback': false })
  await tracing.inSpan('logout', () => app.inject({ method: 'POST', url: '/logout', headers: { cookie } }))
  t.match(tracing.named('session.destroy')[0]!.attributes, { 'headroom.session.store': 'redis' })
  await tracing.inSpan('me again', () => me(app, cookie))
  t.equal(tracing.named('session.load').at(-1)!.attributes['headroom.session.found'], false, 'a destroyed session is not found')
  noSecrets(t, cookie)
})

t.test('Redis down since boot: loads and saves say memory and fallback', async (t) => {
  const app = await buildApp(t, { redis: redisClient(t, `redis://127.0.0.1:${await freePort()}`), connectTimeoutMs: 100 })
  const cookie = await tracing.inSpan('login', () => login(app, USER))
  t.match(tracing.named('session.save').at(-1)!.attributes, { 'headroom.session.store': 'memory', 'headroom.session.fallback': true })
  t.equal((await tracing.inSpan('me', () => me(app, cookie))).body.userId, USER)
  t.match(tracing.named('session.load')[0]!.attributes, { 'headroom.session.source': 'memory', 'headroom.session.found': true, 'headroom.session.fallback': true })
  noSecrets(t, cookie)
})

t.test('outside a recording span (a sampled-out request) the store makes no span', async (t) => {
  const iso = await isolatedRedis(t)
  const app = await buildApp(t, { redis: redisClient(t, iso.url), keyPrefix: iso.prefix })
  tracing.reset()
  const cookie = await login(app, USER)
  t.equal((await me(app, cookie)).body.userId, USER)
  t.same(tracing.spans().map((s) => s.name), [], 'no root spans')
})
