/**
 * The capacity run's measurements, in order: the latency-versus-rate ladder
 * of one app process (cache on), closed-loop throughput at several
 * concurrencies (the USL fit), cache on vs off at the same rates, pool max 5
 * vs 25 on the summary query, pgbench and redis-benchmark, and Redis memory
 * per key kind. Returns raw figures; report.ts turns them into the report.
 */
import { randomBytes } from 'node:crypto'
import { KEY_PREFIX, memoryByPattern, setup, type Fixture } from './fixture.js'
import { runClosed, runOpen, type Req, type StepResult } from './load.js'
import { measureStep, type Step } from './measure.js'
import { logInMany, mixSource, type VirtualUser } from './mix.js'
import { startServer, type Server } from './process.js'
import { pgbench, redisBench, type PgbenchPoint, type RedisBenchRow } from './shared.js'

export interface Settings {
  users: number
  heavyUsers: number
  heavyTransactions: number
  virtualUsers: number
  stepS: number
  startRate: number
  rateFactor: number
  maxSteps: number
  uslConcurrency: number[]
  uslStepS: number
  compareSlices: number
  compareShares: number[]
  poolShares: number[]
  pgbenchClients: number[]
  pgbenchS: number
  redisRequests: number
  /** the seed's peak for 100,000 users (req/s): measured alone, `peakS` long, after the ladder (issue #18's goal: p99 < 100 ms, zero 5xx) */
  peakRate: number
  peakS: number
  /** the simulated market feed's latency; unset: the example's default (80 ms) */
  marketLatencyMs?: number
}

/** The seed's shape for 100,000 users: 2,000 of them logged in at once, peaking at 1,400 requests/s. */
export const FULL: Settings = {
  users: 100_000,
  heavyUsers: 40,
  heavyTransactions: 8000,
  virtualUsers: 2_000,
  stepS: 10,
  startRate: 25,
  rateFactor: 1.3,
  maxSteps: 24,
  uslConcurrency: [1, 2, 4, 8, 16, 32, 64],
  uslStepS: 5,
  compareSlices: 2,
  compareShares: [0.25, 0.5, 0.8],
  poolShares: [0.5, 0.8, 1.1, 1.5, 2.5],
  pgbenchClients: [1, 2, 4, 8, 16, 32],
  pgbenchS: 5,
  redisRequests: 200_000,
  peakRate: 1_400,
  peakS: 30
}
export const QUICK: Settings = {
  users: 2_000,
  heavyUsers: 10,
  heavyTransactions: 4000,
  virtualUsers: 60,
  stepS: 2,
  startRate: 25,
  rateFactor: 2,
  maxSteps: 9,
  uslConcurrency: [1, 4, 16],
  uslStepS: 2,
  compareSlices: 1,
  compareShares: [0.5],
  poolShares: [0.8, 2],
  pgbenchClients: [1, 4, 8],
  pgbenchS: 2,
  redisRequests: 20_000,
  peakRate: 1_400,
  peakS: 5,
  // a quick run checks the pipeline, not the figure: at its low rates a step's
  // p99 is about its slowest request, a quote fetched upstream (80 ms by
  // default), which left the 100 ms criterion 5-15 ms of room, and a CI run
  // on a busy machine passed no step at all
  marketLatencyMs: 10
}

/**
 * The capacity criterion: p99 under 100 ms, at most 0.1 % errors or 5xx.
 * Latency counts from the intended send, so the generator's own lag can only
 * make a step fail, never pass; it is reported per step.
 */
export const P99_LIMIT_MS = 100
export function passes (s: StepResult): boolean {
  return s.p99 < P99_LIMIT_MS && (s.e5xx + s.errors) <= s.sent * 0.001
}

export interface CompareRow { rate: number, on: Step, off: Step }
export interface PoolRow { rate: number, max5: Step, max25: Step }
export interface UslPoint { n: number, x: number, p99: number }

export interface RunData {
  settings: Settings
  seededUsers: number
  ladder: Step[]
  /** one step at the seed's peak rate (settings.peakRate) */
  peak: Step
  usl: UslPoint[]
  compare: CompareRow[]
  pool: PoolRow[]
  pgbench: PgbenchPoint[]
  redisBench: RedisBenchRow[]
  /** mean MEMORY USAGE per key and key counts; `summaryEntries` / `insightsEntries` count the entries alone (one per user) */
  memory: Record<'session' | 'sessionIndex' | 'summary' | 'summaryEntries' | 'insights' | 'insightsEntries' | 'rateLimit', { bytes: number, keys: number }>
}

type Log = (s: string) => void

export function appEnv (fx: Fixture, secret: string, cache: 'on' | 'off', s: Settings): Record<string, string> {
  return {
    ...(s.marketLatencyMs === undefined ? {} : { MARKET_LATENCY_MS: String(s.marketLatencyMs) }),
    CAPACITY_SERVER: 'app',
    CAPACITY_CACHE: cache,
    DATABASE_URL: fx.dbUrl,
    REDIS_URL: fx.redis.url,
    REDIS_KEY_PREFIX: KEY_PREFIX,
    SESSION_SECRET: secret,
    // the load generator plays the TLS-terminating load balancer
    TRUST_PROXY: 'true',
    LOG_LEVEL: 'warn',
    // a virtual user stands for thousands of users: the per-user 500 / 15 min would measure 429s
    RATE_LIMIT_MAX: '10000000',
    LOGIN_RATE_LIMIT_MAX: '10000',
    // the virtual users log in several at a time before the measurement
    PASSWORD_HASH_CONCURRENCY: '16'
  }
}

/** Every virtual user's insights and summary computed once, as a user's first page view of the hour does. */
export async function warm (base: string, users: VirtualUser[]): Promise<void> {
  for (let i = 0; i < users.length; i += 32) {
    await Promise.all(users.slice(i, i + 32).flatMap((u) => ['/api/insights', '/api/summary'].map((p) =>
      fetch(base + p, { headers: { cookie: u.cookie, 'x-forwarded-proto': 'https' } }).then((r) => r.arrayBuffer()))))
  }
}

async function ladder (app: Server, fx: Fixture, s: Settings, next: () => Req, log: Log): Promise<Step[]> {
  const steps: Step[] = []
  let rate = s.startRate
  let failures = 0
  let passed = false
  // until two steps in a row miss the criterion, after a pass (or four steps: a loaded machine may pass none)
  for (let i = 0; i < s.maxSteps && !(failures >= 2 && (passed || i >= 4)); i++) {
    const step = await measureStep(app, fx, () => runOpen(app.url, Math.round(rate), s.stepS, next))
    steps.push(step)
    log(`  ${Math.round(rate)} req/s: p50 ${step.p50.toFixed(1)} p99 ${step.p99.toFixed(1)} ms, ${step.e5xx} 5xx, ${step.errors} errors, lag p99 ${step.lagP99.toFixed(1)} ms${passes(step) ? '' : ' (over)'}`)
    failures = passes(step) ? 0 : failures + 1
    passed ||= passes(step)
    rate *= s.rateFactor
  }
  return steps
}

export async function measureAll (s: Settings, log: Log): Promise<RunData> {
  const fx = await setup(s.users, { users: s.heavyUsers, transactionsPerUser: s.heavyTransactions }, log)
  const servers: Server[] = []
  const start = async (env: Record<string, string>) => { const sv = await startServer(env); servers.push(sv); return sv }
  try {
    const secret = randomBytes(32).toString('hex')
    const [on, off] = await Promise.all([start(appEnv(fx, secret, 'on', s)), start(appEnv(fx, secret, 'off', s))])
    const users = await logInMany(on.url, fx.firstUserId, fx.users, s.virtualUsers)
    await warm(on.url, users)
    log(`  ${users.length} virtual users logged in, their insights and summaries cached`)
    const next = mixSource(users)

    // unmeasured: the JIT compiles the hot paths, the pools open their connections
    await runOpen(on.url, s.startRate * 2, s.stepS, next)
    await runOpen(off.url, s.startRate * 2, s.stepS, next)
    log('latency vs rate (cache on)')
    const steps = await ladder(on, fx, s, next, log)
    const passing = steps.filter(passes)
    const capacity = passing.length > 0 ? Math.max(...passing.map((x) => x.rate)) : steps[0]!.rate
    // the last steps overloaded the app: let it drain before the peak step
    await new Promise((resolve) => setTimeout(resolve, 5000))
    const peak = await measureStep(on, fx, () => runOpen(on.url, s.peakRate, s.peakS, next))
    log(`the seed's peak, ${s.peakRate} req/s for ${s.peakS} s: p50 ${peak.p50.toFixed(1)} p99 ${peak.p99.toFixed(1)} ms, ${peak.e5xx} 5xx, ${peak.errors} errors, lag p99 ${peak.lagP99.toFixed(1)} ms`)

    log('throughput vs concurrency (closed loop, for the USL fit)')
    const usl: UslPoint[] = []
    for (const n of s.uslConcurrency) {
      const r = await runClosed(on.url, n, s.uslStepS, next)
      usl.push({ n, x: r.throughput, p99: r.p99 })
      log(`  N=${n}: ${r.throughput.toFixed(0)} req/s, p99 ${r.p99.toFixed(1)} ms`)
    }

    log('cache on vs off')
    const compare: CompareRow[] = []
    for (const share of s.compareShares) {
      const rate = Math.max(20, Math.round(capacity * share))
      const parts: Record<'on' | 'off', Step[]> = { on: [], off: [] }
      for (let slice = 0; slice < s.compareSlices; slice++) {
        for (const which of slice % 2 === 0 ? ['on', 'off'] as const : ['off', 'on'] as const) {
          const sv = which === 'on' ? on : off
          parts[which].push(await measureStep(sv, fx, () => runOpen(sv.url, rate, s.stepS, next)))
        }
      }
      const row = { rate, on: mergeSteps(parts.on), off: mergeSteps(parts.off) }
      compare.push(row)
      log(`  ${rate} req/s: on p50 ${row.on.p50.toFixed(1)} p99 ${row.on.p99.toFixed(1)} ms, ${row.on.costs.statements} statements; off p50 ${row.off.p50.toFixed(1)} p99 ${row.off.p99.toFixed(1)} ms, ${row.off.costs.statements} statements`)
    }
    await Promise.all([on.close(), off.close()])

    const memory = await memoryByPattern(fx.redis.url, {
      session: `${KEY_PREFIX}session:sess:*`,
      sessionIndex: `${KEY_PREFIX}session:user:*`,
      summary: `${KEY_PREFIX}cache:*summary*`,
      summaryEntries: `${KEY_PREFIX}cache:e:{summary|*`,
      insights: `${KEY_PREFIX}cache:*insights*`,
      insightsEntries: `${KEY_PREFIX}cache:e:{insights|*`,
      rateLimit: `${KEY_PREFIX}rl:default:*`
    }) as RunData['memory']

    log('shared resources: pgbench (summary statement), redis-benchmark')
    const statement = fx.summarySql
    if (statement === undefined) throw new Error('no sample caught the app\'s summary statement in pg_stat_activity')
    const pg = await pgbench(fx.pg, statement, { first: fx.firstUserId, count: fx.users }, s.pgbenchClients, s.pgbenchS)
    for (const p of pg) log(`  pgbench -c ${p.clients}: ${p.tps.toFixed(0)} tps, ${p.latencyMs} ms`)
    const rb = await redisBench(fx.redis.url, s.redisRequests)
    for (const r of rb) log(`  ${r.shape}: ${r.opsPerS.toFixed(0)} ops/s`)

    log('pool max 5 vs 25 (a heavy user\'s summary per request, no cache)')
    const [p5, p25] = await Promise.all([5, 25].map((max) => start({ CAPACITY_SERVER: 'pool', DATABASE_URL: fx.dbUrl, POOL_MAX: String(max) })))
    let k = 0
    const poolNext = (): Req => ({ kind: 'summary', method: 'GET', path: `/summary/${fx.heavy.first + (k++ % fx.heavy.count)}`, headers: {} })
    // the database-bound throughput of the large pool, closed loop: the rates below are shares of it
    const poolPeak = (await runClosed(p25!.url, 32, s.stepS, poolNext)).throughput
    log(`  max 25, 32 clients back to back: ${poolPeak.toFixed(0)} req/s`)
    const pool: PoolRow[] = []
    for (const [i, share] of s.poolShares.entries()) {
      const rate = Math.max(10, Math.round(poolPeak * share))
      const got: Partial<Record<'max5' | 'max25', Step>> = {}
      for (const [name, sv] of i % 2 === 0 ? [['max5', p5!], ['max25', p25!]] as const : [['max25', p25!], ['max5', p5!]] as const) {
        got[name] = await measureStep(sv, fx, () => runOpen(sv.url, rate, s.stepS, poolNext, { connections: 512 }))
      }
      pool.push({ rate, max5: got.max5!, max25: got.max25! })
      log(`  ${rate} req/s: max 5 ${got.max5!.throughput.toFixed(0)} ok/s p99 ${got.max5!.p99.toFixed(0)} ms ${got.max5!.e503} 503s; max 25 ${got.max25!.throughput.toFixed(0)} ok/s p99 ${got.max25!.p99.toFixed(0)} ms ${got.max25!.e503} 503s`)
    }
    return { settings: s, seededUsers: fx.users, ladder: steps, peak, usl, compare, pool, pgbench: pg, redisBench: rb, memory }
  } finally {
    await Promise.all(servers.map((sv) => sv.close()))
    await fx.close()
  }
}

/** Slices of one variant as one step: counts and costs summed, percentiles averaged over slices. */
export function mergeSteps (parts: Step[]): Step {
  const first = parts[0]!
  if (parts.length === 1) return first
  const sum = (f: (s: Step) => number) => parts.reduce((a, s) => a + f(s), 0)
  const avg = (f: (s: Step) => number) => sum(f) / parts.length
  const max = (f: (s: Step) => number) => Math.max(...parts.map(f))
  const byKind: Record<string, number> = {}
  const bytesByKind: Record<string, number> = {}
  const commands: Record<string, number> = {}
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.byKind)) byKind[k] = (byKind[k] ?? 0) + v
    for (const [k, v] of Object.entries(p.bytesByKind)) bytesByKind[k] = (bytesByKind[k] ?? 0) + v
    for (const [k, v] of Object.entries(p.costs.redisCommands)) commands[k] = (commands[k] ?? 0) + v
  }
  return {
    rate: first.rate,
    durationS: sum((s) => s.durationS),
    sent: sum((s) => s.sent),
    ok: sum((s) => s.ok),
    e5xx: sum((s) => s.e5xx),
    e503: sum((s) => s.e503),
    e4xx: sum((s) => s.e4xx),
    errors: sum((s) => s.errors),
    throughput: sum((s) => s.ok) / sum((s) => s.durationS),
    mean: sum((s) => s.mean * s.sent) / Math.max(1, sum((s) => s.sent)),
    p50: avg((s) => s.p50),
    p95: avg((s) => s.p95),
    p99: avg((s) => s.p99),
    max: max((s) => s.max),
    lagP99: max((s) => s.lagP99),
    lagMax: max((s) => s.lagMax),
    byKind,
    bytesByKind,
    apiRequests: sum((s) => s.apiRequests),
    costs: {
      appCpuS: sum((s) => s.costs.appCpuS),
      pgCpuS: sum((s) => s.costs.pgCpuS),
      pgServerCpuS: sum((s) => s.costs.pgServerCpuS),
      statements: sum((s) => s.costs.statements),
      redisCpuS: sum((s) => s.costs.redisCpuS),
      redisCommands: commands,
      quoteCalls: sum((s) => s.costs.quoteCalls),
      insightCalls: sum((s) => s.costs.insightCalls),
      maxActiveConnections: max((s) => s.costs.maxActiveConnections),
      maxOpenConnections: max((s) => s.costs.maxOpenConnections)
    }
  }
}
