import { isolatedSchema, startRedis, startRedisCluster, uniqueId, waitFor, type PrivateRedis, type TestContext } from '@headroom/testing'
import { createConnection, createServer, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import t from 'tap'
import { REDIS_CONNECT_WAIT_MS } from '../src/redis.js'
import { clusterUrl } from './backends.js'
import { build, DIST_SERVER, runServer } from './dist-server.js'
import { Client } from './helpers.js'

/**
 * The production start (`node dist/server.js`, as the image runs it) while
 * Redis is down, in the two ways it can be down: refusing connections (the
 * process is gone) and accepting them but never answering (a frozen
 * process: SIGSTOP; the kernel still completes the TCP handshake). The
 * instance must start degraded within a bounded time, serve without a 5xx,
 * and use Redis again once it is back, without a restart.
 *
 * The bounds are loose on purpose (a machine at load 10+): what they catch
 * is the failure mode, a crash (the process exits before listening) or a
 * start that waits on Redis with no bound (never listening).
 */

/**
 * Building the app while Redis is down: the bounded waits (3 s for the
 * client, then the plugins' first round trips, 1–2 s each) plus generous
 * slack for a machine at load 10+. A start that waits on Redis without a
 * bound never gets here (runServer gives up after LISTEN_TIMEOUT_MS).
 */
const APP_BOUND_MS = REDIS_CONNECT_WAIT_MS + 25_000
/** spawn to "Server listening", node's own start included: only against a hang (seen: 49 s at load 24) */
const LISTEN_TIMEOUT_MS = 120_000
/** Redis back to readiness `pass`: a reconnect (at most 2 s apart) plus a health-check period (5 s) */
const RECOVERY_BOUND_MS = 45_000

interface Outage {
  url: string
  /** the keys under `prefix` on every node, once Redis answers again */
  keys (prefix: string): Promise<string[]>
  heal (): Promise<void>
}

const frozen = new Set<number>()
function signal (node: PrivateRedis, sig: 'SIGSTOP' | 'SIGCONT') {
  const pid = node.pid()
  if (pid === null) throw new Error(`redis-server on ${node.port} is not running`)
  process.kill(pid, sig)
  if (sig === 'SIGSTOP') frozen.add(pid)
  else frozen.delete(pid)
}
// a frozen redis-server must not outlive the run (teardown SIGKILLs it; this covers an early exit)
process.once('exit', () => { for (const pid of frozen) try { process.kill(pid, 'SIGCONT') } catch {} })

function admin (t: TestContext, port: number): Redis {
  const c = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true })
  c.on('error', () => {})
  t.teardown(() => c.disconnect())
  return c
}

async function scan (clients: Redis[], pattern: string): Promise<string[]> {
  const found: string[] = []
  for (const c of clients) {
    let cursor = '0'
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
      cursor = next
      found.push(...keys)
    } while (cursor !== '0')
  }
  return found
}

const outages: Record<string, (t: TestContext) => Promise<Outage>> = {
  async 'one Redis, connection refused' (t) {
    const redis = await startRedis(t)
    await redis.kill()
    return { url: redis.url, keys: (p) => scan([admin(t, redis.port)], `${p}*`), heal: () => redis.start() }
  },
  async 'one Redis, accepting connections but never answering (SIGSTOP)' (t) {
    const redis = await startRedis(t)
    signal(redis, 'SIGSTOP')
    return { url: redis.url, keys: (p) => scan([admin(t, redis.port)], `${p}*`), heal: async () => signal(redis, 'SIGCONT') }
  },
  async 'one Redis behind a TCP proxy that accepts and never answers' (t) {
    // a proxy (or a load balancer's VIP) up while the Redis behind it is not:
    // connections are accepted and hang; healed, new ones reach a real Redis
    const redis = await startRedis(t)
    const held = new Set<Socket>()
    const all = new Set<Socket>()
    let healed = false
    const proxy = createServer((socket) => {
      socket.on('error', () => {})
      all.add(socket)
      socket.on('close', () => all.delete(socket))
      if (!healed) {
        held.add(socket)
        return
      }
      const upstream = createConnection(redis.port, '127.0.0.1')
      upstream.on('error', () => socket.destroy())
      socket.on('close', () => upstream.destroy())
      socket.pipe(upstream).pipe(socket)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => {
      proxy.close(() => resolve())
      for (const s of all) s.destroy()
    }))
    const port = (proxy.address() as { port: number }).port
    return {
      url: `redis://127.0.0.1:${port}`,
      keys: (p) => scan([admin(t, redis.port)], `${p}*`),
      async heal () {
        // the proxy's backend comes up and it drops the connections it held (as a proxy does when its backend check passes)
        healed = true
        for (const s of held) s.destroy()
        held.clear()
      }
    }
  },
  async 'a Redis Cluster, every node refusing' (t) {
    const cluster = await startRedisCluster(t, { masters: 3 })
    await Promise.all(cluster.nodes.map((n) => n.kill()))
    return {
      url: clusterUrl(cluster),
      keys: (p) => scan(cluster.nodes.map((n) => admin(t, n.port)), `${p}*`),
      async heal () {
        // the nodes keep their cluster configuration (nodes-<port>.conf) across the restart
        await Promise.all(cluster.nodes.map((n) => n.start()))
        await cluster.healthy()
      }
    }
  },
  async 'a Redis Cluster, every node frozen (SIGSTOP)' (t) {
    const cluster = await startRedisCluster(t, { masters: 3 })
    for (const n of cluster.nodes) signal(n, 'SIGSTOP')
    return {
      url: clusterUrl(cluster),
      keys: (p) => scan(cluster.nodes.map((n) => admin(t, n.port)), `${p}*`),
      async heal () {
        for (const n of cluster.nodes) signal(n, 'SIGCONT')
        await cluster.healthy()
      }
    }
  }
}

interface Readiness { status: string, checks: Record<string, Array<{ status: string, output?: string }>> }

t.before(build)

for (const [name, outage] of Object.entries(outages)) {
  t.test(`${name} at start: starts degraded, serves without a 5xx, uses Redis again once it is back`, async (t) => {
    const { url: databaseUrl } = await isolatedSchema(t)
    const down = await outage(t)
    const prefix = `${uniqueId('start')}:`
    const spawned = performance.now()
    const server = await runServer(t, DIST_SERVER, {
      DATABASE_URL: databaseUrl,
      REDIS_URL: down.url,
      REDIS_KEY_PREFIX: prefix,
      MARKET_LATENCY_MS: '0',
      MARKET_FAILURE_RATE: '0',
      INSIGHTS_COST_MS: '0'
    }, LISTEN_TIMEOUT_MS)
    const startMs = performance.now() - spawned
    // the phases of the start (server.ts's startup line): node and the imports, migrations, building the app
    const startup = server.output().split('\n').filter((l) => l.includes('"startup"')).map((l) => JSON.parse(l).startup as { bootMs: number, migrateMs: number, appMs: number })[0]
    t.comment(`listening ${Math.round(startMs)} ms after the spawn: ${JSON.stringify(startup)}`)
    // what depends on Redis is building the app (its waits are bounded); node's own start depends on the machine's load
    t.ok(startup !== undefined && startup.appMs < APP_BOUND_MS, `the app built within ${APP_BOUND_MS} ms while Redis is down (${startup?.appMs} ms)`)
    t.match(server.output(), /starting degraded/, 'the start says it is degraded')

    const readiness = async () => {
      const res = await fetch(`${server.url}/health/ready`)
      return { statusCode: res.status, body: await res.json() as Readiness }
    }
    const before = await readiness()
    t.equal(before.statusCode, 200, 'ready: degraded is not down')
    t.equal(before.body.status, 'warn', 'but visibly degraded')
    for (const check of ['redis-sessions:connection', 'redis:session', 'redis:ratelimit', 'redis:cache']) {
      t.equal(before.body.checks[check]?.[0]?.status, 'warn', `${check} warns: ${JSON.stringify(before.body.checks[check])}`)
    }
    t.equal(before.body.checks['postgres:primary']?.[0]?.status, 'pass')

    // a user's whole visit on the fallbacks: memory session, local limits, L1 cache
    const statuses: number[] = []
    const c = new Client(server.url)
    const email = `${prefix.replace(/[^a-z0-9]/gi, '')}@example.com`
    const record = <T extends { status: number }>(r: T) => { statuses.push(r.status); return r }
    t.equal(record(await c.signup(email, 'long enough password')).status, 201, 'signup on the fallbacks')
    const account = record(await c.get('/api/accounts')).body.items[0].id
    for (let i = 1; i <= 5; i++) record(await c.post('/api/transactions', { accountId: account, amountCents: i * 100, category: 'misc' }))
    const summary = record(await c.get('/api/summary'))
    t.equal(summary.body.netWorthCents, 1500, 'the summary sees every write')
    record(await c.get('/api/insights'))
    record(await c.get('/api/quotes'))
    const remaining = async () => Number(/;r=(\d+)/.exec(String(record(await c.get('/api/summary')).headers.ratelimit))?.[1])
    const first = await remaining()
    t.equal(await remaining(), first - 1, 'rate limits still count (locally)')
    t.same(statuses.filter((s) => s >= 500), [], 'no 5xx while Redis is down')

    const healedAt = performance.now()
    await down.heal()
    let last: Readiness | undefined
    await waitFor('readiness to pass once Redis is back', async () => (last = (await readiness()).body).status === 'pass', RECOVERY_BOUND_MS, 500)
      .catch((err) => { t.comment(JSON.stringify(last), server.output().slice(-4000)); throw err })
    t.comment(`readiness passed ${Math.round(performance.now() - healedAt)} ms after Redis came back`)
    const after = await readiness()
    for (const check of ['redis-sessions:connection', 'redis-cache:connection', 'redis:session', 'redis:ratelimit', 'redis:cache']) {
      t.equal(after.body.checks[check]?.[0]?.status, 'pass', `${check} passes`)
    }
    t.equal(record(await c.get('/api/summary')).status, 200, 'the session made during the outage still works')
    // Redis is used again: a new session and its rate-limit counter land in it
    const again = new Client(server.url)
    t.equal(record(await again.login(email, 'long enough password')).status, 200)
    t.equal(record(await again.get('/api/summary')).status, 200)
    await waitFor('the new session and its counters in Redis', async () => {
      const keys = await down.keys(prefix)
      return keys.some((k) => k.startsWith(`${prefix}session:`)) && keys.some((k) => k.startsWith(`${prefix}rl:`))
    }, 10_000, 250)
    t.pass('sessions and rate limits are in Redis again')
    t.same(statuses.filter((s) => s >= 500), [], 'no 5xx at any point')
    t.notMatch(server.output(), /ECONNREFUSED[\s\S]*\n\s+at /, 'no stack trace printed')
    t.equal(await server.stop(), 0, 'SIGTERM: drained and exited 0')
  })
}
