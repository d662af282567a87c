/**
 * From a run's raw figures to everything the report states: the instance's
 * capacity, per-request costs, the USL fits, the bottleneck, the verdict on
 * each seed claim, and the model and cost tables at 1k–1M daily users under
 * two traffic models. Pure (no I/O): test/model.test.ts runs it on fixed data.
 */
import { monthlyCost, SEED_COSTS, type Cost, type Prices } from './cost.js'
import type { Step } from './measure.js'
import { perRequest } from './measure.js'
import { MIX, MIX_SLOTS, STATIC_SHARE } from './mix.js'
import { fitUsl, size, uslPeak, type Measured, type Sizing, type TrafficModel, type Usl } from './model.js'
import { P99_LIMIT_MS, passes, type RunData } from './run.js'

export const USER_COUNTS = [1_000, 10_000, 100_000, 1_000_000]

/** The example's cache TTLs (examples/finance-api/src/config.ts defaults) and quote symbols per request. */
export const TTL_S = { summary: 60, insights: 3600, quotes: 5 }
export const QUOTE_SYMBOLS = 15

export const TRAFFIC_MODELS: TrafficModel[] = [
  {
    name: 'seed',
    why: 'SEED.md: ~100,000 API requests/hour for 10,000–15,000 daily users → 8 per daily user in the busiest hour (midpoint 12,500); ' +
      '1,000–2,000 concurrent users for them → 12 % of daily users at once. Assumed: the busiest hour carries 10 % of a day.',
    apiPerUserPeakHour: 8,
    peakHourShare: 0.1,
    concurrentShare: 0.12
  },
  {
    name: 'heavy',
    why: 'A finance dashboard is left open at market open: quotes refresh every 30 s over a 10-minute visit (20 requests) on top of two page ' +
      'views (≈ 10 API requests each) → 40 per daily user in the busiest hour (5× the seed), the busiest hour 15 % of the day, 25 % of daily users at once.',
    apiPerUserPeakHour: 40,
    peakHourShare: 0.15,
    concurrentShare: 0.25
  }
]

export type Verdict = 'true' | 'false' | 'true-with-caveat'
export interface Claim { claim: string, source: string, verdict: Verdict, figures: string }
export interface Headline { seed: string, measured: string, contradicted: boolean }
export interface ModelRow { model: string, sizing: Sizing, cost: Cost }

export interface Analysis {
  capacityRps: number
  /** the highest step that met the criterion; when none did, the step with the lowest p99 stands in (capacityMet false) */
  capacityStep: Step
  capacityMet: boolean
  /** the ladder ended with two steps that missed the criterion: it went past saturation */
  saturated: boolean
  apiCapacityRps: number
  /** the seed's peak step: p99 < P99_LIMIT_MS with zero 5xx and zero transport errors (issue #18's goal) */
  peakHolds: boolean
  /** per-request costs at the seed's peak step */
  peak: ReturnType<typeof perRequest>
  on: ReturnType<typeof perRequest>
  off: ReturnType<typeof perRequest>
  appUsl: Usl
  pgUsl: Usl
  /** per resource: its CPU per CPU second of the app, and how many busy app cores one of its cores keeps up with */
  bottleneck: Array<{ resource: string, coresPerAppCore: number, appCoresPerCore: number }>
  measured: Measured
  hit: { summary: number, insights: number }
  claims: Claim[]
  headlines: Headline[]
  rows: ModelRow[]
}

/** The seed's peak holds: p99 under the limit, not one 5xx, not one transport error. */
export function peakHolds (s: Step): boolean {
  return s.p99 < P99_LIMIT_MS && s.e5xx === 0 && s.errors === 0
}

/** P(an entry is fresh when asked for) for Poisson requests at `ratePerS` and a TTL of `ttlS`. */
export const poissonHit = (ratePerS: number, ttlS: number) => 1 - Math.exp(-ratePerS * ttlS)

const pct = (x: number) => `${(x * 100).toFixed(0)} %`
const ms = (x: number) => `${x.toFixed(1)} ms`

export function analyse (d: RunData, prices: Prices): Analysis {
  const passing = d.ladder.filter(passes)
  const capacityMet = passing.length > 0
  const capacityStep = capacityMet
    ? passing.reduce((a, b) => (b.rate > a.rate ? b : a))
    : d.ladder.reduce((a, b) => (b.p99 < a.p99 ? b : a))
  const capacityRps = capacityStep.rate
  const mid = d.compare[Math.floor(d.compare.length / 2)]!
  const on = perRequest(capacityStep)
  const off = perRequest(mid.off)
  const appUsl = fitUsl(d.usl.map((p) => ({ n: p.n, x: p.x })))
  const pgUsl = fitUsl(d.pgbench.map((p) => ({ n: p.clients, x: p.tps })))
  const seed = TRAFFIC_MODELS[0]!
  const userRate = (slots: number) => (seed.apiPerUserPeakHour * slots) / (MIX_SLOTS - MIX.static) / 3600
  const hit = { summary: poissonHit(userRate(MIX.summary), TTL_S.summary), insights: poissonHit(userRate(MIX.insights), TTL_S.insights) }

  const bytes = (k: keyof RunData['memory']) => Number.isFinite(d.memory[k].bytes) ? d.memory[k].bytes : 0
  // a cached summary is its entry plus its tag and lease keys: all their bytes over the entries
  const perEntry = (all: 'summary' | 'insights', entries: 'summaryEntries' | 'insightsEntries') =>
    d.memory[entries].keys > 0 ? (bytes(all) * d.memory[all].keys) / d.memory[entries].keys : bytes(all)
  const measured: Measured = {
    capacityRps,
    staticShare: STATIC_SHARE,
    // per-user entries are almost never reused at the seed's per-user rate (hit above): the database is sized on cache-off costs
    dbQueriesPerApiReq: off.statementsPerApiReq,
    pgCpuMsPerApiReq: off.pgCpuMsPerApiReq,
    redisCmdsPerApiReq: on.redisCmdsPerApiReq,
    redisCpuMsPerApiReq: on.redisCpuMsPerApiReq,
    bytesPerSession: bytes('session') + bytes('sessionIndex'),
    bytesPerSummary: perEntry('summary', 'summaryEntries'),
    bytesPerInsight: perEntry('insights', 'insightsEntries'),
    bytesPerRateKey: bytes('rateLimit'),
    quoteCallsPerApiReq: off.quoteCallsPerApiReq,
    insightCallsPerApiReq: off.insightCallsPerApiReq * (1 - hit.insights),
    ...responseBytes(capacityStep),
    poolMax: 25
  }
  const rows: ModelRow[] = TRAFFIC_MODELS.flatMap((t) => USER_COUNTS.map((users) => {
    const sizing = size(users, t, measured, prices.rdsPostgres, prices.elasticache)
    return { model: t.name, sizing, cost: monthlyCost(sizing, prices, { quotePerApiReq: measured.quoteCallsPerApiReq, insightPerApiReq: measured.insightCallsPerApiReq, quoteCallsMaxPerS: QUOTE_SYMBOLS / TTL_S.quotes }) }
  }))

  // rate-independent: CPU of each resource per CPU second of the app, at the capacity step
  const appCpu = capacityStep.costs.appCpuS
  const bottleneck = [
    { resource: 'app (Node, one process)', cpu: appCpu },
    { resource: 'PostgreSQL (the app\'s backends)', cpu: capacityStep.costs.pgCpuS },
    { resource: 'Redis', cpu: capacityStep.costs.redisCpuS }
  ].map((r) => ({ resource: r.resource, coresPerAppCore: appCpu > 0 ? r.cpu / appCpu : Number.NaN, appCoresPerCore: r.cpu > 0 ? appCpu / r.cpu : Number.POSITIVE_INFINITY }))

  return {
    capacityRps,
    capacityStep,
    capacityMet,
    saturated: d.ladder.length >= 2 && d.ladder.slice(-2).every((s) => !passes(s)),
    apiCapacityRps: capacityRps * (1 - STATIC_SHARE),
    peakHolds: peakHolds(d.peak),
    peak: perRequest(d.peak),
    on,
    off,
    appUsl,
    pgUsl,
    bottleneck,
    measured,
    hit,
    claims: claims(d, on, off, hit),
    headlines: headlines(d, capacityRps * (1 - STATIC_SHARE), pgUsl, rows),
    rows
  }
}

/** Mean body bytes of an API response and of a static file, as the step received them. */
function responseBytes (s: Step): { apiBytesPerResponse: number, staticBytesPerResponse: number } {
  const all = Object.values(s.bytesByKind).reduce((a, b) => a + b, 0)
  const statics = s.bytesByKind.static ?? 0
  return { apiBytesPerResponse: (all - statics) / Math.max(1, s.apiRequests), staticBytesPerResponse: statics / Math.max(1, s.byKind.static ?? 0) }
}

function claims (d: RunData, on: Analysis['on'], off: Analysis['off'], hit: Analysis['hit']): Claim[] {
  const top = d.pool.at(-1)!
  const thr = top.max25.throughput / Math.max(1e-9, top.max5.throughput)
  const conc = top.max25.costs.maxActiveConnections / Math.max(1, top.max5.costs.maxActiveConnections)
  const fewer = 1 - on.statementsPerApiReq / off.statementsPerApiReq
  const fewerAtSeed = fewer * ((MIX.summary * hit.summary + MIX.insights * hit.insights) / (MIX.summary + MIX.insights))
  const faster = d.compare.map((r) => ({ rate: r.rate, p50: r.on.p50 < r.off.p50, p99: r.on.p99 < r.off.p99 }))
  const quotesSaved = 1 - on.quoteCallsPerApiReq / Math.max(1e-9, off.quoteCallsPerApiReq)
  const insightsSaved = 1 - on.insightCallsPerApiReq / Math.max(1e-9, off.insightCallsPerApiReq)
  return [
    {
      claim: 'The larger pool (5–25 connections) "handles 5x more concurrent database requests"',
      source: 'SEED.md §1',
      verdict: thr >= 4 ? 'true' : conc >= 3 ? 'true-with-caveat' : 'false',
      figures: `at ${top.rate} req/s of a database-bound request: max 25 served ${top.max25.throughput.toFixed(0)} req/s (p99 ${ms(top.max25.p99)}, ${top.max25.e503} 503s), ` +
        `max 5 ${top.max5.throughput.toFixed(0)} req/s (p99 ${ms(top.max5.p99)}, ${top.max5.e503} 503s): ${thr.toFixed(2)}× the throughput; ` +
        `${top.max25.costs.maxActiveConnections} vs ${top.max5.costs.maxActiveConnections} statements running at once (${conc.toFixed(1)}×). ` +
        'More requests are in flight, not 5× more served: the database\'s cores bound throughput (USL above).'
    },
    {
      claim: 'Caching gives "80% reduction in database queries"',
      source: 'SEED.md §4',
      verdict: fewer >= 0.8 ? (fewerAtSeed >= 0.8 ? 'true' : 'true-with-caveat') : 'false',
      figures: `statements per API request: ${on.statementsPerApiReq.toFixed(2)} cache on vs ${off.statementsPerApiReq.toFixed(2)} off at ${d.compare[Math.floor(d.compare.length / 2)]!.rate} req/s → ${pct(fewer)} fewer, ` +
        `with ${d.settings.virtualUsers} virtual users each asking many times a minute. At the seed's 8 API requests per user-hour a user's summary (TTL ${TTL_S.summary} s) is fresh when asked ` +
        `${pct(hit.summary)} of the time, insights (TTL 1 h) ${pct(hit.insights)}: about ${pct(fewerAtSeed)} fewer. The cache-zipf benchmark (\`pnpm bench cache-zipf\`) measures a shared-key trace with the same 60 s TTL.`
    },
    {
      claim: 'Caching gives "faster response times"',
      source: 'SEED.md §4',
      verdict: faster.every((f) => f.p50 && f.p99) ? 'true' : faster.some((f) => f.p50 || f.p99) ? 'true-with-caveat' : 'false',
      figures: d.compare.map((r) => `${r.rate} req/s: p50 ${ms(r.on.p50)} on vs ${ms(r.off.p50)} off, p99 ${ms(r.on.p99)} vs ${ms(r.off.p99)}`).join('; ') +
        '. Cache off, every insights request waits for the model (400 ms): p99 is the model\'s latency.'
    },
    {
      claim: 'Caching quotes and AI insights cuts external API cost',
      source: 'SEED.md §4, cost estimation ("External APIs")',
      verdict: quotesSaved > 0.5 && insightsSaved > 0.5 ? (hit.insights >= 0.9 ? 'true' : 'true-with-caveat') : 'false',
      figures: `provider calls per API request: quotes ${on.quoteCallsPerApiReq.toFixed(4)} on vs ${off.quoteCallsPerApiReq.toFixed(4)} off (${pct(quotesSaved)} saved), ` +
        `model calls ${on.insightCallsPerApiReq.toFixed(4)} vs ${off.insightCallsPerApiReq.toFixed(4)} (${pct(insightsSaved)} saved). Quotes are shared by all users (${QUOTE_SYMBOLS} symbols, ${TTL_S.quotes} s): ` +
        `at most ${QUOTE_SYMBOLS / TTL_S.quotes} calls/s for the whole fleet. Insights are per user for an hour: at the seed's rate ${pct(hit.insights)} of insights requests find one, so about ${pct(1 - hit.insights)} still call the model.`
    }
  ]
}

function headlines (d: RunData, apiCapacityRps: number, pgUsl: Usl, rows: ModelRow[]): Headline[] {
  const perHour = apiCapacityRps * 3600
  const at100k = rows.find((r) => r.model === 'seed' && r.sizing.users === 100_000)!
  const at10k = rows.find((r) => r.model === 'seed' && r.sizing.users === 10_000)!
  const pgPeak = Math.max(...d.pgbench.map((p) => p.tps))
  const within = (x: number, lo: number, hi: number) => x >= lo * 0.8 && x <= hi * 1.25
  // the total is mostly external-API calls priced by assumption (prices.json): say how much is infrastructure
  const usd = (x: number) => `$${Math.round(x).toLocaleString('en-US')}`
  const split = (r: ModelRow) => `infrastructure ${usd(r.cost.total - r.cost.externalApis)}, external APIs ${usd(r.cost.externalApis)} at assumed unit prices`
  return [
    { seed: 'current architecture: ~100,000 API requests/hour', measured: `one app process on one core: ${Math.round(perHour).toLocaleString('en-US')} API requests/hour at p99 < 100 ms`, contradicted: !within(perHour, 100_000, 100_000) },
    { seed: 'current architecture: ~10,000–15,000 daily users', measured: `${Math.round(perHour / 8).toLocaleString('en-US')} daily users per process at 8 API requests per user-hour`, contradicted: !within(perHour / 8, 10_000, 15_000) },
    { seed: 'current architecture: ~50,000 database queries/hour', measured: `PostgreSQL on 2 cores ran ${Math.round(pgPeak * 3600).toLocaleString('en-US')} summary statements/hour (pgbench, best of ${d.pgbench.length} client counts; USL peak at N ≈ ${Number.isFinite(uslPeak(pgUsl)) ? uslPeak(pgUsl).toFixed(1) : '∞, no coherency cost fitted'})`, contradicted: !within(pgPeak * 3600, 50_000, 50_000) },
    { seed: '100K users: 5–10 app instances', measured: `${at100k.sizing.appProcesses} app processes (${at100k.sizing.appHosts} × 2-vCPU hosts)`, contradicted: !within(at100k.sizing.appProcesses, 5, 10) },
    { seed: '100K users: primary + 2–3 read replicas', measured: `${at100k.sizing.pgPrimary}${at100k.sizing.pgMultiAz ? ' Multi-AZ' : ''} + ${at100k.sizing.pgReplicas} read replicas`, contradicted: at100k.sizing.pgReplicas < 2 || at100k.sizing.pgReplicas > 3 },
    { seed: '100K users: Redis cluster of 3–5 nodes', measured: `${at100k.sizing.redisShards} shard(s) × ${1 + at100k.sizing.redisReplicasPerShard} node(s) of ${at100k.sizing.redisNode}, ${at100k.sizing.redisMemoryMiB.toFixed(0)} MiB`, contradicted: !within(at100k.sizing.redisShards * (1 + at100k.sizing.redisReplicasPerShard), 3, 5) },
    { seed: '100K users: $2,000–4,000/month', measured: `$${Math.round(at100k.cost.total).toLocaleString('en-US')}/month (${split(at100k)})`, contradicted: !within(at100k.cost.total, SEED_COSTS[1]!.total[0], SEED_COSTS[1]!.total[1]) },
    { seed: 'current setup (10,000–15,000 users): $200–300/month', measured: `$${Math.round(at10k.cost.total).toLocaleString('en-US')}/month at 10,000 users (${split(at10k)})`, contradicted: !within(at10k.cost.total, SEED_COSTS[0]!.total[0], SEED_COSTS[0]!.total[1]) }
  ]
}
