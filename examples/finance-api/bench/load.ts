/**
 * The finance-api load scenario: the real app in a child process on real
 * PostgreSQL and Redis, seeded users logged in as virtual users, a realistic
 * request mix through autocannon. Every figure in the report is measured in
 * this run; nothing is carried over from another run or estimated.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { startServer, type CustomResult, type RunContext } from '@headroom/benchmarks'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import pg from 'pg'
import { migrate } from '../src/migrate.js'
import { SEED_PASSWORD, seed, seedEmail } from '../src/seed.js'
import { completeSeconds, percentile, renderSvg, type Second, type TickWindow } from './chart.js'
import { parseMetrics, sumSamples } from './metrics.js'

/**
 * The seed's traffic model (SEED.md, "Estimated capacity"): about 100,000 API
 * requests an hour for 10,000–15,000 daily active users. At the midpoint,
 * 12,500 users, that is 8 API requests per daily user in the busiest hour.
 */
export const SEED_API_REQUESTS_PER_HOUR = 100_000
export const SEED_DAILY_USERS = 12_500
export const REQUESTS_PER_USER_HOUR = SEED_API_REQUESTS_PER_HOUR / SEED_DAILY_USERS

/** What a dashboard session does, in 20 slots: reads dominate, about 5 % writes, static files as a browser fetches them. */
const MIX: Array<{ kind: Kind, slots: number }> = [
  { kind: 'summary', slots: 6 },
  { kind: 'transactions', slots: 5 },
  { kind: 'quotes', slots: 3 },
  { kind: 'insights', slots: 2 },
  { kind: 'static', slots: 3 },
  { kind: 'write', slots: 1 }
]
type Kind = 'summary' | 'transactions' | 'quotes' | 'insights' | 'static' | 'write'

export interface VirtualUser { cookie: string, csrfToken: string, accountId: string }

export interface LoadSettings {
  users: number
  virtualUsers: number
  connections: number
  warmupS: number
  durationS: number
}

export const QUICK: LoadSettings = { users: 2_000, virtualUsers: 40, connections: 32, warmupS: 5, durationS: 15 }
export const FULL: LoadSettings = { users: 20_000, virtualUsers: 200, connections: 64, warmupS: 10, durationS: 60 }

const ROOT = new URL('../../../', import.meta.url)
const RESULTS = new URL('benchmarks/results/', ROOT)

async function admin<T> (url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try { return await fn(c) } finally { await c.end() }
}

const round1 = (v: number) => Math.round(v * 10) / 10

/** The example's environment under load on a seeded database (also the Express comparison's: bench/express/). */
export function serverEnv (databaseUrl: string, redisUrl: string, prefix: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    SESSION_SECRET: randomBytes(32).toString('hex'),
    // the load generator plays the TLS-terminating load balancer
    TRUST_PROXY: 'true',
    LOG_LEVEL: 'warn',
    // one client here stands for thousands of users: the per-user limit of 500 / 15 min would measure 429s
    RATE_LIMIT_MAX: '10000000',
    LOGIN_RATE_LIMIT_MAX: '10000',
    // the virtual users log in eight at a time before the measurement
    PASSWORD_HASH_CONCURRENCY: '16'
  }
}

/** A seeded user logged in (cookie and CSRF token) with the id of their first account; the tracing scenario's users too. */
export async function login (base: string, email: string): Promise<VirtualUser> {
  const headers = { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }
  const res = await fetch(`${base}/api/auth/login`, { method: 'POST', headers, body: JSON.stringify({ email, password: SEED_PASSWORD }) })
  if (res.status !== 200) throw new Error(`login of ${email} answered ${res.status}: ${await res.text()}`)
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')
  const { csrfToken } = await res.json() as { csrfToken: string }
  const acc = await fetch(`${base}/api/accounts`, { headers: { cookie, 'x-forwarded-proto': 'https' } })
  const { items } = await acc.json() as { items: Array<{ id: string }> }
  return { cookie, csrfToken, accountId: items[0]!.id }
}

async function scrape (base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`)
  return res.status === 200 ? res.text() : ''
}

/** One autocannon run over the mix; every response time is kept for exact percentiles. */
function drive (base: string, users: VirtualUser[], settings: LoadSettings, seconds: number, record: boolean) {
  const times: number[] = []
  const windows: TickWindow[] = []
  let current: number[] = []
  let windowStart = 0
  const status = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }
  const sent: Record<Kind, number> = { summary: 0, transactions: 0, quotes: 0, insights: 0, static: 0, write: 0 }
  const statics = ['/', '/assets/app.js', '/assets/app.css', '/assets/favicon.svg']
  let s = 0
  const pick = () => users[Math.floor(Math.random() * users.length)]!
  const slots = MIX.flatMap((m) => Array.from({ length: m.slots }, () => m.kind))
  // interleaved, not grouped: every connection walks the same 20-slot cycle
  slots.sort(() => Math.random() - 0.5)
  const requests = slots.map((kind) => ({
    method: 'GET' as const,
    path: '/',
    setupRequest (req: { method: string, path: string, headers: Record<string, string>, body?: string }) {
      sent[kind]++
      const u = pick()
      const headers: Record<string, string> = { 'x-forwarded-proto': 'https', cookie: u.cookie }
      switch (kind) {
        case 'summary': return { ...req, method: 'GET', path: '/api/summary', headers }
        case 'transactions': return { ...req, method: 'GET', path: '/api/transactions?limit=20', headers }
        case 'quotes': return { ...req, method: 'GET', path: '/api/quotes?symbols=AAPL,MSFT,VTI', headers }
        case 'insights': return { ...req, method: 'GET', path: '/api/insights', headers }
        case 'static': return { ...req, method: 'GET', path: statics[s++ % statics.length]!, headers: { 'x-forwarded-proto': 'https' } }
        case 'write': return {
          ...req,
          method: 'POST',
          path: '/api/transactions',
          headers: { ...headers, 'content-type': 'application/json', 'x-csrf-token': u.csrfToken },
          body: JSON.stringify({ accountId: u.accountId, amountCents: -Math.round(100 + Math.random() * 9900), category: 'groceries', description: 'load test' })
        }
      }
    }
  }))
  return new Promise<{ times: number[], perSecond: Second[], status: typeof status, sent: typeof sent, errors: number, durationS: number }>((resolve, reject) => {
    const started = windowStart = Date.now()
    const instance = autocannon({ url: base, connections: settings.connections, duration: seconds, requests: requests as never }, (err, result) => {
      if (err) return reject(err)
      // the last partial second is left out of the chart: its rate would read as a drop
      resolve({ times, perSecond: completeSeconds(windows), status, sent, errors: result.errors + result.timeouts, durationS: (Date.now() - started) / 1000 })
    })
    instance.on('response', (_client: unknown, code: number, _bytes: number, ms: number) => {
      const cls = `${Math.floor(code / 100)}xx` as keyof typeof status
      if (cls in status) status[cls]++
      if (!record) return
      times.push(ms)
      current.push(ms)
    })
    instance.on('tick', () => {
      if (!record) return
      const now = Date.now()
      windows.push({ ms: now - windowStart, times: current })
      windowStart = now
      current = []
    })
  })
}

export async function runFinanceLoad (ctx: RunContext): Promise<CustomResult> {
  const settings = ctx.quick ? QUICK : FULL
  const baseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
  const database = `finance_load_${process.pid}_${Date.now().toString(36)}`
  const dbUrl = new URL(baseUrl)
  dbUrl.pathname = `/${database}`
  const prefix = `finance-load-${randomBytes(4).toString('hex')}:`

  await admin(baseUrl, (c) => c.query(`CREATE DATABASE "${database}" TEMPLATE template0`))
  let server: Awaited<ReturnType<typeof startServer>> | undefined
  try {
    await migrate(dbUrl.toString())
    const seeded = await seed(dbUrl.toString(), { users: settings.users })
    ctx.log(`  seeded ${seeded.users} users, ${seeded.transactions} transactions in ${(seeded.ms / 1000).toFixed(1)} s`)

    server = await startServer(new URL('./server.ts', import.meta.url), { NODE_ENV: 'production', ...serverEnv(dbUrl.toString(), redisUrl, prefix) })
    const base = server.url

    const step = Math.max(1, Math.floor(settings.users / settings.virtualUsers))
    const users: VirtualUser[] = []
    for (let i = 0; i < settings.virtualUsers; i += 8) {
      const batch = Array.from({ length: Math.min(8, settings.virtualUsers - i) }, (_, j) => seedEmail(seeded.firstUserId + (i + j) * step))
      users.push(...await Promise.all(batch.map((email) => login(base, email))))
    }
    ctx.log(`  ${users.length} virtual users logged in`)

    await drive(base, users, settings, settings.warmupS, false)
    const before = parseMetrics(await scrape(base))
    const run = await drive(base, users, settings, settings.durationS, true)
    const after = parseMetrics(await scrape(base))

    const sorted = [...run.times].sort((a, b) => a - b)
    const total = run.times.length
    const rps = total / run.durationS
    const staticShare = run.sent.static / Object.values(run.sent).reduce((a, b) => a + b, 0)
    const apiRps = rps * (1 - staticShare)
    const delta = (name: string, filter?: Record<string, string>) => sumSamples(after, name, filter) - sumSamples(before, name, filter)
    // a figure the run did not measure must not print as 0
    for (const name of ['headroom_pool_query_duration_seconds_count', 'headroom_cache_hits_total', 'headroom_cache_misses_total']) {
      if (!after.some((sample) => sample.name === name)) throw new Error(`/metrics has no ${name}: cannot report what it measures`)
    }
    const queries = delta('headroom_pool_query_duration_seconds_count')
    const hits = delta('headroom_cache_hits_total')
    const misses = delta('headroom_cache_misses_total')
    const usersServed = Math.floor((apiRps * 3600) / REQUESTS_PER_USER_HOUR)

    const rows = [
      { measure: 'requests / s (all)', value: Math.round(rps) },
      { measure: 'API requests / s', value: Math.round(apiRps) },
      { measure: 'p50 latency ms', value: round1(percentile(sorted, 50)) },
      { measure: 'p95 latency ms', value: round1(percentile(sorted, 95)) },
      { measure: 'p99 latency ms', value: round1(percentile(sorted, 99)) },
      { measure: 'database queries / API request', value: total > 0 ? Number((queries / (total * (1 - staticShare))).toFixed(3)) : 0 },
      { measure: 'cache hit ratio', value: hits + misses > 0 ? Number((hits / (hits + misses)).toFixed(3)) : 0 },
      { measure: '5xx responses', value: run.status['5xx'] },
      { measure: 'errors / timeouts', value: run.errors },
      { measure: `daily users one instance serves (${REQUESTS_PER_USER_HOUR} API req per user-hour)`, value: usersServed }
    ]
    const notes = [
      `${settings.users.toLocaleString('en-US')} seeded users, ${settings.virtualUsers} logged in as virtual users, ${settings.connections} connections, ` +
        `${settings.durationS} s measured after ${settings.warmupS} s warm-up; mix per 20 requests: ${MIX.map((m) => `${m.slots} ${m.kind}`).join(', ')}.`,
      `Seed model: ${SEED_API_REQUESTS_PER_HOUR.toLocaleString('en-US')} API requests/hour for ${SEED_DAILY_USERS.toLocaleString('en-US')} daily users ` +
        `= ${REQUESTS_PER_USER_HOUR} per user in the busiest hour; users served = API req/s × 3600 / ${REQUESTS_PER_USER_HOUR}, at saturation of one ` +
        'server process pinned to one core (the load generator on the other; PostgreSQL and Redis float on the same 2-core machine).'
    ]
    writeReport({ settings, rows, notes, perSecond: run.perSecond, status: run.status, sent: run.sent, quick: ctx.quick })
    ctx.log('  report: benchmarks/results/finance-load.md (+ .svg)')

    const checks = [
      { name: 'no 5xx under load', pass: run.status['5xx'] === 0, detail: `${run.status['5xx']} of ${total}` },
      { name: 'no connection errors', pass: run.errors === 0, detail: `${run.errors}` },
      {
        name: 'one instance serves the seed\'s 10,000–15,000 daily users',
        pass: usersServed >= 15_000,
        detail: `${usersServed.toLocaleString('en-US')} users at ${Math.round(apiRps)} API req/s`
      }
    ]
    return { rows, notes, checks }
  } finally {
    await server?.close()
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true })
    try {
      await redis.connect()
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        cursor = next
        if (keys.length > 0) await redis.unlink(...keys)
      } while (cursor !== '0')
    } catch { /* Redis was never reachable: nothing to clean */ } finally { redis.disconnect() }
    await admin(baseUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`))
  }
}

function writeReport (r: {
  settings: LoadSettings
  rows: Array<{ measure: string, value: number }>
  notes: string[]
  perSecond: Second[]
  status: Record<string, number>
  sent: Record<string, number>
  quick: boolean
}) {
  mkdirSync(RESULTS, { recursive: true })
  const fmt = (v: number) => Number.isInteger(v) ? v.toLocaleString('en-US') : String(v)
  const md = [
    `# finance-api under load${r.quick ? ' (quick)' : ''}`,
    '',
    `${new Date().toISOString()} · ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}) · Node ${process.version}`,
    '',
    '| measure | value |',
    '|---|---|',
    ...r.rows.map((row) => `| ${row.measure} | ${fmt(row.value)} |`),
    '',
    '![requests per second and latency percentiles, second by second](finance-load.svg)',
    '',
    `Requests sent by kind: ${Object.entries(r.sent).map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ')}.`,
    `Responses by class: ${Object.entries(r.status).map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ')}.`,
    '',
    ...r.notes.flatMap((n) => [n, '']),
    'Generated by `pnpm bench finance-load` (benchmarks/scenarios/finance-load.bench.ts).',
    ''
  ].join('\n')
  writeFileSync(new URL('finance-load.md', RESULTS), md)
  writeFileSync(new URL('finance-load.svg', RESULTS), renderSvg(r.perSecond))
}

export const resultsDir = fileURLToPath(RESULTS)
