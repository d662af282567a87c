import { cpus } from 'node:os'
import autocannon from 'autocannon'
import { startServer } from './child.js'
import { mean, median } from './stats.js'
import type {
  BenchRequest, Check, CheckResult, CustomScenario, HttpScenario, OpsScenario,
  RunContext, Scenario, ScenarioResult, Timing, VariantResult
} from './types.js'

export const QUICK: Timing = { duration: 1.5, warmup: 1, rounds: 5 }
export const FULL: Timing = { duration: 10, warmup: 3, rounds: 5 }

interface Round { rps: number, p50: number, p99: number, errors: number, non2xx: number }

function load (url: string, requests: BenchRequest[], connections: number, seconds: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    autocannon({
      url,
      connections,
      duration: seconds,
      requests: requests.map((r) => ({ method: r.method ?? 'GET', path: r.path, headers: r.headers, body: r.body }))
    }, (err, result) => {
      if (err) return reject(err)
      resolve({
        rps: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        errors: result.errors + result.timeouts,
        non2xx: result.non2xx
      })
    })
  })
}

function evaluate (checks: Check[] | undefined, baseline: string, variants: VariantResult[]): CheckResult[] {
  return (checks ?? []).map((check) => {
    const against = check.against ?? baseline
    const num = variants.find((v) => v.name === check.variant)
    const den = variants.find((v) => v.name === against)
    const name = `${check.variant} / ${against}` + (check.min !== undefined ? ` >= ${check.min}` : '') + (check.max !== undefined ? ` <= ${check.max}` : '')
    if (!num || !den) return { name, pass: false, detail: 'unknown variant in check' }
    // per-round ratios, so both sides of each ratio saw the same machine
    const ratios = num.perRound.map((value, i) => value / den.perRound[i]!)
    const ratio = median(ratios)
    const pass = (check.min === undefined || ratio >= check.min) && (check.max === undefined || ratio <= check.max)
    return { name, pass, detail: `ratio ${ratio.toFixed(3)}` }
  })
}

function summarize (name: string, rounds: Round[], baselineRounds: Round[]): VariantResult {
  const perRound = rounds.map((r) => r.rps)
  return {
    name,
    rps: mean(perRound),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    ratio: median(perRound.map((v, i) => v / baselineRounds[i]!.rps)),
    perRound,
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    non2xx: rounds.reduce((a, r) => a + r.non2xx, 0)
  }
}

function base (scenario: Scenario, quick: boolean): Omit<ScenarioResult, 'checks'> {
  return {
    scenario: scenario.name,
    kind: scenario.kind,
    description: scenario.description,
    quick,
    startedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version, platform: process.platform }
  }
}

/**
 * Starts a variant's server in a fresh process, warms it up, measures one
 * round and stops it: a process per round, so a process that lands in a slow
 * state for its whole life costs one round, not the run (benchmarks/README.md).
 */
async function measureRound (variant: HttpScenario['variants'][number], scenario: HttpScenario, env: Record<string, string>, timing: Timing, ctx: RunContext, round: number): Promise<Round> {
  const handle = await startServer(variant.server, { ...env, ...variant.env })
  try {
    const makeRequests = variant.requests ?? scenario.requests ?? (() => [{ path: '/' }])
    const requests = await makeRequests({ url: handle.url })
    const connections = scenario.connections ?? 50
    if (round === 0) ctx.log(`  warm-up ${variant.name} (${timing.warmup}s, before every round)`)
    await load(handle.url, requests, connections, timing.warmup)
    return await load(handle.url, requests, connections, timing.duration)
  } finally {
    await handle.close()
  }
}

async function runHttp (scenario: HttpScenario, timing: Timing, ctx: RunContext): Promise<ScenarioResult> {
  const prepared = (await scenario.setup?.()) ?? {}
  try {
    const rounds = new Map<string, Round[]>(scenario.variants.map((v) => [v.name, []]))
    for (let round = 0; round < timing.rounds; round++) {
      // A B A B ...: every variant sees the same machine state within a round
      const order = round % 2 === 0 ? scenario.variants : [...scenario.variants].reverse()
      for (const variant of order) {
        const r = await measureRound(variant, scenario, prepared.env ?? {}, timing, ctx, round)
        rounds.get(variant.name)!.push(r)
        ctx.log(`  round ${round + 1}/${timing.rounds} ${variant.name}: ${Math.round(r.rps)} req/s`)
      }
    }
    const baselineRounds = rounds.get(scenario.baseline)
    if (!baselineRounds) throw new Error(`scenario ${scenario.name}: baseline ${scenario.baseline} is not a variant`)
    const variants = scenario.variants.map((v) => summarize(v.name, rounds.get(v.name)!, baselineRounds))
    return { ...base(scenario, ctx.quick), baseline: scenario.baseline, timing, variants, checks: evaluate(scenario.checks, scenario.baseline, variants) }
  } finally {
    await prepared.teardown?.()
  }
}

async function timeOps (op: () => unknown, seconds: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000
  let count = 0
  let start = performance.now()
  const first = op()
  const isAsync = first instanceof Promise
  if (isAsync) await first
  start = performance.now()
  while (performance.now() < deadline) {
    // batches keep the clock out of the measurement
    for (let i = 0; i < 1000; i++) {
      if (isAsync) await op()
      else op()
    }
    count += 1000
  }
  return count / ((performance.now() - start) / 1000)
}

async function runOps (scenario: OpsScenario, timing: Timing, ctx: RunContext): Promise<ScenarioResult> {
  const built = new Map<string, { op: () => unknown, teardown?: () => Promise<void> | void }>()
  try {
    for (const v of scenario.variants) built.set(v.name, await v.setup())
    for (const v of scenario.variants) await timeOps(built.get(v.name)!.op, Math.min(timing.warmup, 1))
    const rounds = new Map<string, Round[]>(scenario.variants.map((v) => [v.name, []]))
    const seconds = Math.max(1, timing.duration / 2)
    for (let round = 0; round < timing.rounds; round++) {
      const order = round % 2 === 0 ? scenario.variants : [...scenario.variants].reverse()
      for (const v of order) {
        const rps = await timeOps(built.get(v.name)!.op, seconds)
        rounds.get(v.name)!.push({ rps, p50: Number.NaN, p99: Number.NaN, errors: 0, non2xx: 0 })
        ctx.log(`  round ${round + 1}/${timing.rounds} ${v.name}: ${Math.round(rps)} ops/s`)
      }
    }
    const baselineRounds = rounds.get(scenario.baseline)
    if (!baselineRounds) throw new Error(`scenario ${scenario.name}: baseline ${scenario.baseline} is not a variant`)
    const variants = scenario.variants.map((v) => ({ ...summarize(v.name, rounds.get(v.name)!, baselineRounds), p50: null, p99: null }))
    return { ...base(scenario, ctx.quick), baseline: scenario.baseline, timing, variants, checks: evaluate(scenario.checks, scenario.baseline, variants) }
  } finally {
    for (const b of built.values()) await b.teardown?.()
  }
}

async function runCustom (scenario: CustomScenario, ctx: RunContext): Promise<ScenarioResult> {
  const result = await scenario.run(ctx)
  return { ...base(scenario, ctx.quick), rows: result.rows, checks: result.checks ?? [], notes: result.notes }
}

export function runScenario (scenario: Scenario, ctx: RunContext): Promise<ScenarioResult> {
  const timing = ctx.quick ? QUICK : FULL
  switch (scenario.kind) {
    case 'http': return runHttp(scenario, timing, ctx)
    case 'ops': return runOps(scenario, timing, ctx)
    case 'custom': return runCustom(scenario, ctx)
  }
}
