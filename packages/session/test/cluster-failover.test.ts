import { clusterClient, sleep, startRedisCluster, waitFor, whenReady } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import type { Cluster } from 'ioredis'
import t, { type Test } from 'tap'
import { keySlot } from '../src/outages.js'
import { buildApp, idOf, login, me } from './helpers.js'
import { stallRecorder } from './suite.js'

/**
 * What the latency bound proves: no request waited for a second command
 * timeout (a second call to the dead node after the first noticed it), so
 * every request is within one timeout plus a slack that stays below another
 * timeout. The process is charged for no stall of its own (see
 * stallRecorder); the slack absorbs Redis and the loaded event loop. With a
 * 250 ms timeout the slack had to stay under 250 ms and failed at load
 * averages of 6-11 (Redis itself descheduled for a few hundred ms); a 1 s
 * timeout leaves 800 ms of slack and the bound still excludes a second wait.
 */
const COMMAND_TIMEOUT_MS = 1000
const SLACK_MS = 800
const USERS = 48

/** configured like the example's cluster client (examples/finance-api/src/redis.ts) */
function appClient (t: Test, startupNodes: Array<{ host: string, port: number }>): Cluster {
  return clusterClient(t, startupNodes, {
    enableOfflineQueue: false,
    slotsRefreshInterval: 2000,
    slotsRefreshTimeout: 1000,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 2000 }
  })
}

// Issue #12 (topology scenario 3): a master killed on a cluster with replicas
// took every session of the instance to memory; users whose session that
// instance had not seen, or who had logged in elsewhere, got 401s.
//
// With cluster-require-full-coverage yes (Redis's default) every node refuses
// every command (CLUSTERDOWN) from the moment the dead master is marked FAIL
// until its replica is promoted, so for that moment the other masters' sessions
// fall back too: only "nobody logged out" and the time bound are asserted then.
for (const fullCoverage of [false, true]) {
  t.test(`a master killed on a cluster with replicas (cluster-require-full-coverage ${fullCoverage ? 'yes' : 'no'}): ${fullCoverage ? '' : 'only its slots fall back, '}no logged-in user is logged out, every request within the command timeout`, (t) => failover(t, fullCoverage))
}

async function failover (t: Test, fullCoverage: boolean): Promise<void> {
  const cluster = await startRedisCluster(t, { masters: 3, replicas: 1, args: ['--cluster-require-full-coverage', fullCoverage ? 'yes' : 'no'] })
  const clients = [appClient(t, cluster.startupNodes), appClient(t, cluster.startupNodes)]
  const admin = appClient(t, cluster.startupNodes)
  await Promise.all([...clients, admin].map((c) => whenReady(c)))
  // two instances behind a balancer: each user's requests alternate between them
  const apps: FastifyInstance[] = []
  for (const c of clients) {
    const app = await buildApp(t, { redis: c, keyPrefix: 'fo:', commandTimeoutMs: COMMAND_TIMEOUT_MS, probeIntervalMs: 200 })
    await app.ready()
    apps.push(app)
  }
  const [a1, a2] = apps as [FastifyInstance, FastifyInstance]
  // a third instance that serves nobody until the failover: its memory holds no session
  const cold = await buildApp(t, { redis: appClient(t, cluster.startupNodes), keyPrefix: 'fo:', commandTimeoutMs: COMMAND_TIMEOUT_MS, probeIntervalMs: 200 })
  await cold.ready()
  t.equal(keySlot('fo:sess:{abc}'), Number(await admin.cluster('KEYSLOT', 'fo:sess:{abc}')), 'keySlot is Redis\'s CLUSTER KEYSLOT')

  const victim = (await cluster.roles()).find((r) => r.role === 'master')!.node
  const victimKey = `127.0.0.1:${victim.port}`
  const masterOf = (key: string) => admin.slots[keySlot(key)]?.[0]
  // half the users logged in on each instance: the other one has never seen their session
  const cookies = await Promise.all(Array.from({ length: USERS }, (_, i) => login(apps[i % 2]!, `user${i}`)))
  const onVictim = cookies.map((c) => masterOf(`fo:sess:{${idOf(c)}}`) === victimKey)
  t.ok(onVictim.some(Boolean) && onVictim.some((v) => !v), `sessions on the victim master and on the others (${onVictim.filter(Boolean).length} of ${USERS} on the victim)`)
  await admin.wait(1, 1000).catch(() => {})

  const stalls = stallRecorder(t)
  const problems: string[] = []
  const slow: string[] = []
  let phase: 'before' | 'down' | 'after' = 'before'
  let slowest = 0
  let requests = 0
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now()
    const out = await fn()
    const end = performance.now()
    const ms = end - start - stalls.within(start, end)
    requests++
    slowest = Math.max(slowest, ms)
    if (ms > COMMAND_TIMEOUT_MS + SLACK_MS) slow.push(`${what} in phase ${phase}: ${ms.toFixed(0)} ms (${(end - start).toFixed(0)} ms wall)`)
    return out
  }
  const written = new Array<number>(USERS).fill(0)
  const state = { running: true }
  const loop = async (i: number) => {
    const cookie = cookies[i] as string
    for (let n = 1; state.running; n++) {
      const app = apps[n % 2] as FastifyInstance
      if (n % 4 === 0) {
        const res = await timed('POST /set', () => app.inject({ method: 'POST', url: '/set', payload: { a: n }, headers: { cookie } }))
        if (res.statusCode !== 200) problems.push(`user${i} POST /set ${res.statusCode}`)
        else written[i] = n
      } else {
        const { res, body } = await timed('GET /me', () => me(app, cookie))
        if (res.statusCode !== 200 || body.userId !== `user${i}`) problems.push(`user${i} (${onVictim[i] ? 'victim' : 'live'} master) logged out in phase ${phase}: ${res.statusCode} ${body.userId}`)
        // a session on a live master is shared through Redis during the failover: the other instance's last write is seen at once
        else if (!fullCoverage && !onVictim[i] && written[i] !== 0 && body.a !== written[i]) problems.push(`user${i} (live master) read a=${body.a} after a=${written[i]} was written on the other instance (phase ${phase})`)
      }
      await sleep(40)
    }
  }
  const loops = cookies.map((_, i) => loop(i))
  await sleep(500)

  await victim.kill()
  phase = 'down'
  const killedAt = Date.now()
  await waitFor('the fallback to take over the victim\'s slots', async () => a1.sessions.fallbackActive && a2.sessions.fallbackActive, 10_000, 20)
  // an instance that never saw these sessions reads the dead master's ones from its replica
  for (let i = 0; i < USERS; i++) {
    const { body } = await timed('GET /me (cold instance)', () => me(cold, cookies[i] as string))
    if (body.userId !== `user${i}`) problems.push(`user${i} (${onVictim[i] ? 'victim' : 'live'} master) logged out on the cold instance: ${body.userId}`)
  }
  // a login during the failover: its new id is placed on a live master, so the other instance sees it at once
  const liveUsers = Array.from({ length: 40 }, (_, i) => `late${i}`).filter((u) => masterOf(`fo:user:{${u}}`) !== victimKey).slice(0, 4)
  for (const u of liveUsers) {
    const cookie = await timed('POST /login', () => login(a1, u))
    t.not(masterOf(`fo:sess:{${idOf(cookie)}}`), victimKey, `${u}'s new session is not on the dead master`)
    const { body } = await timed('GET /me', () => me(a2, cookie))
    t.equal(body.userId, u, `${u}, logged in on one instance during the failover, is logged in on the other`)
  }
  await cluster.healthy(30_000)
  const promotedAfter = Date.now() - killedAt
  await waitFor('both instances back on Redis, write-back done', async () => !a1.sessions.fallbackActive && !a2.sessions.fallbackActive, 20_000, 50)
  phase = 'after'
  await sleep(500)
  state.running = false
  await Promise.all(loops)

  t.same(problems, [], `no logged-in user logged out${fullCoverage ? '' : ', live-master sessions shared at once'} (${requests} requests; slots served again after ${promotedAfter} ms)`)
  t.ok(SLACK_MS < COMMAND_TIMEOUT_MS, 'the bound excludes a request that waited for two command timeouts')
  t.ok(slowest <= COMMAND_TIMEOUT_MS + SLACK_MS, `no request slower than the command timeout + ${SLACK_MS} ms (slowest ${slowest.toFixed(0)} ms; the process stalled ${stalls.total().toFixed(0)} ms in all)`, { slow: slow.slice(0, 10) })
  // every session is in Redis after the failover; on a live master with its last write. (On the dead
  // master's slots each instance wrote back what it held, and the last write-back wins: README, Limits.)
  const lost: string[] = []
  for (let i = 0; i < USERS; i++) {
    const hash = await admin.hgetall(`fo:sess:{${idOf(cookies[i] as string)}}`)
    if (hash['=userId'] !== `"user${i}"`) lost.push(`user${i}: session missing`)
    else if (!fullCoverage && !onVictim[i] && written[i] !== 0 && hash['=a'] !== String(written[i])) lost.push(`user${i}: a=${JSON.stringify(hash['=a'])}, last written ${written[i]}`)
  }
  t.same(lost, [], 'every session is in Redis after the failover, with its last write on a live master')
}
