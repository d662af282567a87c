import { cpus } from 'node:os'
import autocannon from 'autocannon'
import { startServer, type ServerHandle } from './child.js'
import { mean, median } from './stats.js'
import type {
  BenchRequest, Check, CheckResult, CustomScenario, HttpScenario, OpsScenario,
  RunContext, Scenario, ScenarioResult, Timing, VariantResult
} from './types.js'

export const QUICK: Timing = { duration: 1.5, warmup: 1, rounds: 3, slices: 1 }
export const FULL: Timing = { duration: 10, warmup: 3, rounds: 5, slices: 4 }

interface Round { rps: number, p50: number, p99: number, errors: number, non2xx: number }

type AutocannonRequest = autocannon.Request

/**
 * The list split among the connections: connection i sends entries i,
 * i + connections, i + 2 x connections, … of a long list (a trace: together
 * they replay it once per cycle, neighbours in flight together), or the
 * whole of a short one starting at entry i. autocannon would otherwise copy
 * and build the whole list for every connection: 20,000 entries x 50
 * connections took 10 s of set-up per load() call, before the clock starts.
 */
export function shares (requests: BenchRequest[], connections: number): AutocannonRequest[][] {
  const toAutocannon = (r: BenchRequest): AutocannonRequest => ({ method: r.method ?? 'GET', path: r.path, headers: r.headers, body: r.body })
  return Array.from({ length: connections }, (_, i) => requests.length >= 2 * connections
    ? requests.filter((_, j) => j % connections === i).map(toAutocannon)
    : requests.map((_, j) => toAutocannon(requests[(i + j) % requests.length]!)))
}

function load (url: string, requests: BenchRequest[], connections: number, seconds: number): Promise<Round> {
  const perConnection = shares(requests, connections)
  let next = 0
  return new Promise((resolve, reject) => {
    autocannon({
      url,
      connections,
      duration: seconds,
      requests: perConnection[0],
      setupClient: (client) => { client.setRequests(perConnection[next++ % connections]!) }
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

/** Mean throughput over equal slices, median latencies, errors summed. */
function combine (slices: Round[]): Round {
  return {
    rps: mean(slices.map((r) => r.rps)),
    p50: median(slices.map((r) => r.p50)),
    p99: median(slices.map((r) => r.p99)),
    errors: slices.reduce((a, r) => a + r.errors, 0),
    non2xx: slices.reduce((a, r) => a + r.non2xx, 0)
  }
}

/**
 * One round: every variant's server in a fresh process, each warmed up,
 * then measured in `slices` interleaved slices (A B, B A, A B, …), and all
 * stopped. A process per round, so a process that lands in a slow state for
 * its whole life costs one round, not the run; slices, so a change in the
 * machine's speed during the round (other tenants of the host) reaches every
 * variant alike (benchmarks/README.md).
 */
async function measureRound (scenario: HttpScenario, env: Record<string, string>, timing: Timing, ctx: RunContext, round: number): Promise<Map<string, Round>> {
  const order = round % 2 === 0 ? scenario.variants : [...scenario.variants].reverse()
  const connections = scenario.connections ?? 50
  const started: Array<{ name: string, server: ServerHandle, requests: BenchRequest[] }> = []
  try {
    for (const variant of order) {
      const server = await startServer(variant.server, { ...env, ...variant.env })
      const entry = { name: variant.name, server, requests: [] as BenchRequest[] }
      started.push(entry)
      const makeRequests = variant.requests ?? scenario.requests ?? (() => [{ path: '/' }])
      entry.requests = await makeRequests({ url: server.url })
    }
    for (const s of started) {
      if (round === 0) ctx.log(`  warm-up ${s.name} (${timing.warmup}s, before every round)`)
      await load(s.server.url, s.requests, connections, timing.warmup)
    }
    const slices = timing.slices ?? 1
    const measured = new Map<string, Round[]>(started.map((s) => [s.name, []]))
    for (let i = 0; i < slices; i++) {
      for (const s of i % 2 === 0 ? started : [...started].reverse()) {
        measured.get(s.name)!.push(await load(s.server.url, s.requests, connections, timing.duration / slices))
      }
    }
    return new Map([...measured].map(([name, parts]) => [name, combine(parts)]))
  } finally {
    for (const s of started) await s.server.close()
  }
}

async function runHttp (scenario: HttpScenario, timing: Timing, ctx: RunContext): Promise<ScenarioResult> {
  const prepared = (await scenario.setup?.()) ?? {}
  try {
    const rounds = new Map<string, Round[]>(scenario.variants.map((v) => [v.name, []]))
    for (let round = 0; round < timing.rounds; round++) {
      const measured = await measureRound(scenario, prepared.env ?? {}, timing, ctx, round)
      for (const variant of scenario.variants) {
        const r = measured.get(variant.name)!
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
