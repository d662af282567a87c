import { readFileSync } from 'node:fs'
import t from 'tap'
import { analyse, poissonHit, TRAFFIC_MODELS } from '../analysis.js'
import { checkAnalysis, checkReport } from '../check.js'
import { COST_PARTS, monthlyCost, type Prices } from '../cost.js'
import type { Step } from '../measure.js'
import { fitUsl, percentile, rdsMaxConnections, size, uslPeak, uslThroughput, type Measured } from '../model.js'
import { renderReport, SECTIONS, type Meta } from '../report.js'
import type { RunData } from '../run.js'

const prices = JSON.parse(readFileSync(new URL('../prices.json', import.meta.url), 'utf8')) as Prices

function step (rate: number, p99: number, extra: Partial<Step> = {}): Step {
  const sent = rate * 10
  return {
    rate,
    durationS: 10,
    sent,
    ok: sent,
    e5xx: 0,
    e503: 0,
    e4xx: 0,
    errors: 0,
    throughput: rate,
    mean: p99 / 4,
    p50: p99 / 5,
    p95: p99 / 2,
    p99,
    max: p99 * 2,
    lagP99: 1,
    lagMax: 2,
    byKind: { static: sent * 0.15, summary: sent * 0.85 },
    bytesByKind: { static: sent * 0.15 * 4000, summary: sent * 0.85 * 700 },
    apiRequests: sent * 0.85,
    costs: { appCpuS: 8, pgCpuS: 2, pgServerCpuS: 2.5, statements: sent * 0.85 * 0.6, redisCpuS: 0.5, redisCommands: { evalsha: sent }, quoteCalls: 10, insightCalls: 0, maxActiveConnections: 3, maxOpenConnections: 10 },
    ...extra
  }
}

function runData (): RunData {
  const off = step(200, 450, { costs: { ...step(200, 450).costs, statements: 200 * 10 * 0.85 * 0.95, pgCpuS: 3, quoteCalls: 900, insightCalls: 200 } })
  return {
    settings: { users: 20_000, heavyUsers: 40, heavyTransactions: 8000, virtualUsers: 300, stepS: 10, startRate: 25, rateFactor: 1.3, maxSteps: 18, uslConcurrency: [1, 2, 4], uslStepS: 5, compareSlices: 2, compareShares: [0.5], poolShares: [1], pgbenchClients: [1, 2, 4], pgbenchS: 5, redisRequests: 1000, peakRate: 1400, peakS: 30 },
    seededUsers: 20_000,
    ladder: [step(100, 20), step(200, 40), step(400, 90), step(520, 300), step(680, 500)],
    peak: step(1400, 60),
    usl: [{ n: 1, x: 300, p99: 5 }, { n: 2, x: 500, p99: 8 }, { n: 4, x: 600, p99: 15 }],
    compare: [{ rate: 200, on: step(200, 40), off }],
    pool: [{ rate: 400, max5: step(400, 900, { throughput: 200, e503: 50 }), max25: step(400, 1500, { throughput: 380, e503: 5, costs: { ...step(400, 1).costs, maxActiveConnections: 20 } }) }],
    pgbench: [{ clients: 1, tps: 5000, latencyMs: 0.2 }, { clients: 2, tps: 8000, latencyMs: 0.25 }, { clients: 4, tps: 9000, latencyMs: 0.44 }],
    redisBench: [{ shape: 'GET', opsPerS: 100_000 }],
    memory: { session: { bytes: 220, keys: 300 }, sessionIndex: { bytes: 140, keys: 300 }, summary: { bytes: 330, keys: 600 }, summaryEntries: { bytes: 300, keys: 200 }, insights: { bytes: 400, keys: 300 }, insightsEntries: { bytes: 350, keys: 300 }, rateLimit: { bytes: 120, keys: 300 } }
  }
}

const META: Meta = { date: '2026-01-01T00:00:00Z', machine: 'test', loadBefore: [1, 1, 1], loadAfter: [1, 1, 1], node: 'v20', commit: 'abc', durationS: 1, command: 'test', pinned: true, chartDir: 'docs/capacity' }

t.test('percentile takes the nearest rank', async (t) => {
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5)
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10)
  t.ok(Number.isNaN(percentile([], 50)))
})

t.test('fitUsl recovers the coefficients of exact USL data, and the peak follows', async (t) => {
  const truth = { lambda: 1000, sigma: 0.05, kappa: 0.002 }
  const points = [1, 2, 4, 8, 16, 32, 64].map((n) => ({ n, x: uslThroughput(truth, n) }))
  const fit = fitUsl(points)
  t.equal(fit.lambda, 1000)
  t.ok(Math.abs(fit.sigma - 0.05) < 1e-9, `sigma ${fit.sigma}`)
  t.ok(Math.abs(fit.kappa - 0.002) < 1e-9, `kappa ${fit.kappa}`)
  t.ok(Math.abs(uslPeak(fit) - Math.sqrt(0.95 / 0.002)) < 1e-6)
  t.throws(() => fitUsl([{ n: 2, x: 10 }]), /N = 1/)
  // linear scaling: no contention, no coherency cost
  const linear = fitUsl([1, 2, 4].map((n) => ({ n, x: 100 * n })))
  t.same([linear.sigma, linear.kappa], [0, 0])
  t.equal(uslPeak(linear), Number.POSITIVE_INFINITY)
  t.equal(uslPeak({ lambda: 1, sigma: 1.2, kappa: 0.01 }), 1, 'contention above 1: the peak is one client')
})

t.test('poissonHit: the chance an entry is fresh when asked for', async (t) => {
  t.equal(poissonHit(0, 60), 0)
  t.ok(Math.abs(poissonHit(1 / 60, 60) - (1 - Math.exp(-1))) < 1e-12)
})

const M: Measured = {
  capacityRps: 500,
  staticShare: 0.15,
  dbQueriesPerApiReq: 1,
  pgCpuMsPerApiReq: 1,
  redisCmdsPerApiReq: 8,
  redisCpuMsPerApiReq: 0.2,
  bytesPerSession: 400,
  bytesPerSummary: 300,
  bytesPerInsight: 400,
  bytesPerRateKey: 120,
  quoteCallsPerApiReq: 0.5,
  insightCallsPerApiReq: 0.05,
  apiBytesPerResponse: 700,
  staticBytesPerResponse: 4000,
  poolMax: 25
}

t.test('size: every row carries its load, and the pooler is called for when the pools outgrow max_connections', async (t) => {
  const seed = TRAFFIC_MODELS[0]!
  const small = size(1000, seed, M, prices.rdsPostgres, prices.elasticache)
  t.same([small.appHosts, small.appProcesses], [2, 4], 'at least two hosts (two zones), a process per vCPU')
  t.equal(small.pgReplicas, 0)
  t.equal(small.pgPrimary, 'db.t4g.medium', 'a burstable node while the load stays under its baseline')
  const mid = size(1_000_000, seed, M, prices.rdsPostgres, prices.elasticache)
  t.ok(mid.pgCores > 0.4, `${mid.pgCores} cores`)
  t.not(mid.pgPrimary, 'db.t4g.medium', 'not above it')
  const big = size(1_000_000, { ...seed, apiPerUserPeakHour: 400 }, M, prices.rdsPostgres, prices.elasticache)
  t.ok(big.appProcesses * M.capacityRps >= big.peakRps)
  t.ok(big.pgPrimaryVcpu * (1 + big.pgReplicas) >= big.pgCores, `${big.pgPrimary} + ${big.pgReplicas} for ${big.pgCores} cores`)
  t.ok(big.pgReplicas > 0)
  t.equal(big.pooler, 'necessary', `${big.poolConnections} pool connections vs ${big.maxConnections}`)
  t.equal(rdsMaxConnections(8), 901)
  t.equal(rdsMaxConnections(1024), 5000)
})

t.test('monthlyCost: the parts add up; quotes are capped by the shared cache', async (t) => {
  const s = size(100_000, TRAFFIC_MODELS[0]!, M, prices.rdsPostgres, prices.elasticache)
  const c = monthlyCost(s, prices, { quotePerApiReq: 0.5, insightPerApiReq: 0, quoteCallsMaxPerS: 3 })
  t.equal(c.total, COST_PARTS.reduce((a, p) => a + c[p], 0))
  t.equal(c.externalApis, 3 * 30 * 86_400 * prices.external.usdPerQuoteCall, 'capped at 3 calls/s for the month')
  t.equal(c.app, s.appHosts * 0.0725 * 730)
})

t.test('analyse + checks: a consistent run passes every check; the report has every section', async (t) => {
  const a = analyse(runData(), prices)
  t.equal(a.capacityRps, 400, 'the highest step under 100 ms p99')
  t.ok(a.capacityMet)
  t.equal(a.measured.bytesPerSummary, 330 * 600 / 200, 'a summary is its entry and its tag keys')
  t.same(a.claims.map((c) => c.verdict).length, 4)
  const checks = checkAnalysis(a, runData())
  t.same(checks.filter((c) => !c.pass), [])
  const md = renderReport(runData(), a, prices, META, checks)
  t.same(checkReport(md).filter((c) => !c.pass), [])
  for (const s of SECTIONS) t.match(md, `## ${s}`)
  t.match(md, /The seed's peak, 1,400 requests\/s .*\*\*holds\*\*/)
})

t.test('the seed\'s peak: p99 over 100 ms or a single 5xx misses it; a quick run reports the miss without failing', async (t) => {
  for (const peak of [step(1400, 140), step(1400, 60, { e5xx: 1, e503: 1 }), step(1400, 60, { errors: 1 })]) {
    const d = { ...runData(), peak }
    const a = analyse(d, prices)
    t.notOk(a.peakHolds)
    const full = checkAnalysis(a, d).filter((c) => !c.pass)
    t.match(full.map((c) => c.name).join('\n'), /seed's peak: 1,400 req\/s/)
    t.notOk(full.some((c) => c.advisory), 'enforced in a full run')
    const quick = checkAnalysis(a, d, true).filter((c) => !c.pass)
    t.ok(quick.length === 1 && quick[0]!.advisory === true, 'reported, not counted, in a quick run')
    t.match(renderReport(d, a, prices, META, []), /\*\*does not hold\*\*/)
  }
})

t.test('checks fail on an inconsistent analysis or an incomplete report', async (t) => {
  const a = analyse(runData(), prices)
  const broken = { ...a, rows: a.rows.map((r, i) => i === 2 ? { ...r, sizing: { ...r.sizing, appProcesses: 0 }, cost: { ...r.cost, total: r.cost.total + 5 } } : r) }
  const failed = checkAnalysis(broken, runData()).filter((c) => !c.pass).map((c) => c.name)
  t.match(failed.join('\n'), /app processes × capacity/)
  t.match(failed.join('\n'), /add up to the total/)
  const noVerdict = { ...a, claims: [{ ...a.claims[0]!, verdict: 'maybe' as never }, ...a.claims.slice(1)] }
  t.match(checkAnalysis(noVerdict, runData()).filter((c) => !c.pass).map((c) => c.name).join('\n'), /verdict/)
  const unsaturated = analyse({ ...runData(), ladder: [step(100, 20), step(200, 40), step(400, 200), step(520, 90)] }, prices)
  t.match(checkAnalysis(unsaturated, runData()).filter((c) => !c.pass).map((c) => c.name).join('\n'), /past saturation/)
  const none = analyse({ ...runData(), ladder: [step(100, 200), step(200, 300)] }, prices)
  t.notOk(none.capacityMet)
  t.equal(none.capacityRps, 100, 'the step with the lowest p99 stands in')
  t.match(checkAnalysis(none, runData()).filter((c) => !c.pass).map((c) => c.name).join('\n'), /measured capacity/)
  const md = renderReport(runData(), a, prices, META, [])
  t.match(checkReport(md.replace('## Monthly cost\n', '')).filter((c) => !c.pass).map((c) => c.detail).join('\n'), /Monthly cost/)
  t.match(checkReport(md + '\nNaN\n').filter((c) => !c.pass).map((c) => c.name).join('\n'), /NaN/)
})
