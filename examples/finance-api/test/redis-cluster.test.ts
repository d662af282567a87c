import { startRedis, startRedisCluster, waitFor } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { clusterUrl } from './backends.js'
import { app } from './e2e-suite.js'
import { Client } from './helpers.js'

async function readiness (server: FastifyInstance) {
  await server.health.runChecks()
  const res = await server.inject('/health/ready')
  return { statusCode: res.statusCode, body: res.json() as { status: string, checks: Record<string, Array<{ status: string, output?: string }>> } }
}

/**
 * Regression: the startup wait used events.once(client, 'ready'), which
 * rejects on the first 'error' event, and a refused connection emits one at
 * once: the server crashed at start whenever Redis (or every node of a
 * cluster) was down.
 */
t.test('Redis refusing connections at start: the server starts degraded, serves, and recovers when Redis comes up', async (t) => {
  const standaloneRedis = await startRedis(t)
  const cluster = await startRedisCluster(t, { masters: 3 })
  for (const [layout, env, stop, start] of [
    ['one server', { REDIS_URL: standaloneRedis.url }, () => standaloneRedis.kill(), () => standaloneRedis.start()],
    ['a cluster', { REDIS_URL: clusterUrl(cluster) }, () => Promise.all(cluster.nodes.map((n) => n.kill())), async () => {
      await Promise.all(cluster.nodes.map((n) => n.start()))
      await cluster.healthy()
    }]
  ] as const) {
    await t.test(layout, async (t) => {
      await stop()
      const server = await app(t, { env, keys: async () => [] })
      const down = await readiness(server)
      t.equal(down.statusCode, 200, 'ready: degraded is not down')
      t.equal(down.body.status, 'warn')
      t.equal(down.body.checks['redis-sessions:connection']?.[0]?.status, 'warn', 'the sessions Redis is named as the one missing')
      t.match(down.body.checks['redis-sessions:connection']?.[0]?.output, /client (connecting|reconnecting|close)/)
      const c = new Client(server)
      t.equal((await c.signup(`down-${layout.replace(' ', '-')}@example.com`, 'long enough password')).status, 201, 'signup works on the fallbacks')
      t.equal((await c.get('/api/summary')).status, 200)

      await start()
      await waitFor('readiness to pass once Redis is up', async () => (await readiness(server)).body.status === 'pass', 30_000, 250)
      t.equal((await c.get('/api/summary')).status, 200, 'the session made while Redis was down still works')
    })
  }
})

t.test('a master of the cluster fails: the app follows the failover to the promoted replica within seconds', async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3, replicas: 1 })
  // (the wait below logs in repeatedly: the login limit must not end it)
  const server = await app(t, { env: { REDIS_URL: clusterUrl(cluster), LOGIN_RATE_LIMIT_MAX: '1000' }, keys: async () => [] })
  const users = Array.from({ length: 6 }, (_, i) => new Client(server))
  // several users: their session keys spread over the masters, so one of them lives on the master that dies
  for (const [i, u] of users.entries()) t.equal((await u.signup(`failover-${i}@example.com`, 'long enough password')).status, 201)
  t.equal((await readiness(server)).body.status, 'pass')

  const victim = (await cluster.roles()).find((r) => r.role === 'master')
  if (!victim) throw new Error('no master found')
  await victim.node.kill()
  const killedAt = Date.now()
  await cluster.healthy()
  const promotedAfter = Date.now() - killedAt

  // every user keeps working through the failover (the fallbacks answer meanwhile)
  for (const u of users) t.equal((await u.get('/api/summary')).status, 200)
  // following the failover: the plugins are back on Redis (checks pass) and
  // a new session is visible to the cluster (the per-user index lists it)
  const followed = Date.now()
  await waitFor('the app to use the promoted master', async () => {
    const ready = await readiness(server)
    if (ready.body.status !== 'pass') return false
    const fresh = new Client(server)
    if ((await fresh.login('failover-0@example.com', 'long enough password')).status !== 200) return false
    const me = (await fresh.get('/api/auth/me')).body
    return (await server.sessions.list(me.user.id).catch(() => [])).length >= 2
  }, 20_000, 250)
  const followedAfter = Date.now() - followed
  t.comment(`cluster promoted a replica ${promotedAfter} ms after the kill; the app followed ${followedAfter} ms later`)
  // a few seconds on a quiet machine; the bound leaves room for a loaded one
  t.ok(followedAfter < 10_000, `followed within 10 s of the promotion (${followedAfter} ms)`)
  for (const u of users) t.equal((await u.get('/api/summary')).status, 200, 'and every session still works')
})
