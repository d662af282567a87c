import { getHub } from '@headroom/core'
import { isolatedRedis, startRedis, waitFor } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import type { Counter } from 'prom-client'
import t, { type Test } from 'tap'
import { buildApp, idOf, login, me, redisClient } from './helpers.js'

/**
 * Hot sessions are served from each instance's memory. What must never
 * happen: an instance honours a session after another instance's response
 * that logged it out, regenerated it or logged its user out everywhere. Each
 * test warms the session on every instance first, so a stale hot copy is
 * exactly what would be served if the invalidation did not hold.
 */

async function instances (t: Test, url: string, prefix: string, n = 3): Promise<FastifyInstance[]> {
  const apps: FastifyInstance[] = []
  for (let i = 0; i < n; i++) apps.push(await buildApp(t, { redis: redisClient(t, url), keyPrefix: prefix, cookie: { secure: false } }))
  await waitFor('every bus subscribed', async () => apps.every((app) => app.sessions.hot?.connected === true), 10_000, 10)
  return apps
}

async function hits (apps: FastifyInstance[]): Promise<number> {
  let total = 0
  for (const app of apps) {
    const counter = getHub(app).registry.getSingleMetric('headroom_session_hot_hits_total') as Counter
    total += (await counter.get()).values[0]?.value ?? 0
  }
  return total
}

/** reads `cookie` on every instance, twice: the second read of each is a hot hit */
async function warm (apps: FastifyInstance[], cookie: string, user: string): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (const app of apps) {
      const { body } = await me(app, cookie)
      if (body.userId !== user) throw new Error(`warming: expected ${user}, got ${String(body.userId)}`)
    }
  }
}

async function honouredAnywhere (apps: FastifyInstance[], cookie: string): Promise<number> {
  const reads = await Promise.all(apps.map((app) => me(app, cookie)))
  return reads.filter(({ body }) => body.userId !== null).length
}

const ROUNDS = 150

t.test('a logout on one instance is honoured by no instance after its response (3 instances, reads racing the logout)', async (t) => {
  const iso = await isolatedRedis(t)
  const apps = await instances(t, iso.url, iso.prefix)
  const before = await hits(apps)
  let honoured = 0
  for (let i = 0; i < ROUNDS; i++) {
    const user = `u${i}`
    const cookie = await login(apps[i % 3]!, user)
    await warm(apps, cookie, user)
    // reads on the other instances in flight while the logout runs (they may see either state)
    const racing = apps.map((app) => me(app, cookie))
    const res = await apps[(i + 1) % 3]!.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    t.equal(res.statusCode, 200)
    // the client got the logout response: from now on, nowhere
    honoured += await honouredAnywhere(apps, cookie)
    await Promise.all(racing)
    honoured += await honouredAnywhere(apps, cookie)
  }
  t.equal(honoured, 0, 'no read after a logout response honoured the session')
  t.ok(await hits(apps) - before >= ROUNDS * 3, 'the warm-up reads were hot hits (the test exercises the hot copies)')
})

t.test('regenerate(): the old id is honoured by no instance after the response', async (t) => {
  const iso = await isolatedRedis(t)
  const apps = await instances(t, iso.url, iso.prefix)
  let honoured = 0
  for (let i = 0; i < ROUNDS / 3; i++) {
    const cookie = await login(apps[i % 3]!, `r${i}`)
    await warm(apps, cookie, `r${i}`)
    // a privilege change with the old cookie: a new id, the old one destroyed
    const res = await apps[(i + 2) % 3]!.inject({ method: 'POST', url: '/login', payload: { user: `r${i}-admin` }, headers: { cookie } })
    t.equal(res.statusCode, 200)
    honoured += await honouredAnywhere(apps, cookie)
  }
  t.equal(honoured, 0)
})

t.test('log-out-everywhere: none of the user\'s sessions is honoured anywhere after the response', async (t) => {
  const iso = await isolatedRedis(t)
  const apps = await instances(t, iso.url, iso.prefix)
  let honoured = 0
  for (let i = 0; i < 20; i++) {
    const user = `e${i}`
    const devices = await Promise.all(apps.map((app) => login(app, user)))
    for (const cookie of devices) await warm(apps, cookie, user)
    const res = await apps[i % 3]!.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: devices[0]! } })
    t.same(res.json(), { destroyed: 3 })
    for (const cookie of devices) honoured += await honouredAnywhere(apps, cookie)
  }
  t.equal(honoured, 0)
})

t.test('a change on one instance is what every instance reads after its response', async (t) => {
  const iso = await isolatedRedis(t)
  const apps = await instances(t, iso.url, iso.prefix)
  const cookie = await login(apps[0]!, 'c')
  await warm(apps, cookie, 'c')
  for (let n = 1; n <= 30; n++) {
    const res = await apps[n % 3]!.inject({ method: 'POST', url: '/set', payload: { a: n }, headers: { cookie } })
    t.equal(res.statusCode, 200)
    const reads = await Promise.all(apps.map((app) => me(app, cookie)))
    t.same(reads.map(({ body }) => body.a), [n, n, n], `every instance reads a = ${n}`)
  }
})

t.test('hot: false reads every session from Redis; the bus is not started', async (t) => {
  const iso = await isolatedRedis(t)
  const app = await buildApp(t, { redis: redisClient(t, iso.url), keyPrefix: iso.prefix, cookie: { secure: false }, hot: false })
  const cookie = await login(app, 'off')
  await me(app, cookie)
  await me(app, cookie)
  t.equal(app.sessions.hot, null)
  t.equal(await hits([app]), 0)
})

t.test('the bus interrupted: no hot read until it is back, and then the hot sessions are dropped wholesale', async (t) => {
  const server = await startRedis(t)
  const apps = await instances(t, server.url, 'p:')
  const admin = redisClient(t, server.url)
  const cookies: string[] = []
  for (let i = 0; i < 20; i++) {
    const cookie = await login(apps[i % 3]!, `k${i}`)
    await warm(apps, cookie, `k${i}`)
    cookies.push(cookie)
  }
  // the subscriptions drop; the sessions are deleted behind the plugin's back, so no message
  // could ever tell the instances: only "no hot read while the bus is down, drop all when it
  // is back" keeps them from being honoured
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await Promise.all(cookies.map((cookie) => admin.unlink(`p:sess:{${idOf(cookie)}}`)))
  let honoured = 0
  for (const cookie of cookies) honoured += await honouredAnywhere(apps, cookie)
  await waitFor('every bus subscribed again', async () => apps.every((app) => app.sessions.hot?.connected === true), 10_000, 10)
  for (const cookie of cookies) honoured += await honouredAnywhere(apps, cookie)
  t.equal(honoured, 0)
})

t.test('through a Redis restart: logouts after it are honoured nowhere, whether or not the buses have resubscribed yet', async (t) => {
  // persisted, so the sessions outlive the restart and their hot copies are what could be served
  const server = await startRedis(t, { args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
  const apps = await instances(t, server.url, 'p:')
  const users = Array.from({ length: 60 }, (_, i) => `x${i}`)
  const cookies: string[] = []
  for (const [i, user] of users.entries()) {
    const cookie = await login(apps[i % 3]!, user)
    await warm(apps, cookie, user)
    cookies.push(cookie)
  }
  await server.kill()
  await server.start()
  // as soon as each instance writes to Redis again (a logout in its fallback would only reach its own memory)
  await waitFor('every store back on Redis', async () => apps.every((app) => !app.sessions.fallbackActive), 20_000, 5)
  let honoured = 0
  for (const [i, cookie] of cookies.entries()) {
    const res = await apps[i % 3]!.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    t.equal(res.statusCode, 200)
    honoured += await honouredAnywhere(apps, cookie)
  }
  t.equal(honoured, 0)
})
