/** One request autocannon sends (a subset of autocannon's own request shape). */
export interface BenchRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS'
  path: string
  headers?: Record<string, string>
  body?: string
}

export interface HttpVariant {
  /** the column name in the report, e.g. `bare`, `headroom`, `@fastify/rate-limit` */
  name: string
  /**
   * A module whose default export builds the server, not yet listening:
   * `export default async function build (env: NodeJS.ProcessEnv): Promise<FastifyInstance>`.
   * It runs in a child process of its own, so the load generator and the
   * server never share an event loop.
   */
  server: string | URL
  /** extra environment for that child (merged over the scenario's setup env) */
  env?: Record<string, string>
  /**
   * The requests to send, asked once the server listens (log in first, for
   * instance). Defaults to the scenario's `requests`.
   */
  requests?: (target: { url: string }) => Promise<BenchRequest[]> | BenchRequest[]
}

/** A ratio the scenario promises, checked on every run and shown as PASS/FAIL. */
export interface Check {
  /** the variant whose throughput is the numerator */
  variant: string
  /** the denominator; defaults to the scenario's baseline */
  against?: string
  min?: number
  max?: number
}

export interface HttpScenario {
  kind: 'http'
  name: string
  description: string
  /** the variant every ratio is measured against */
  baseline: string
  variants: HttpVariant[]
  requests?: (target: { url: string }) => Promise<BenchRequest[]> | BenchRequest[]
  /** concurrent connections; default 50 */
  connections?: number
  /** once before any server starts: create tables, start fixtures; the env it returns reaches every child */
  setup?: () => Promise<{ env?: Record<string, string>, teardown?: () => Promise<void> } | void>
  checks?: Check[]
}

export interface OpsVariant {
  name: string
  /** builds the operation to time; runs in the harness process */
  setup: () => Promise<{ op: () => unknown, teardown?: () => Promise<void> | void }>
}

/** A micro-benchmark: operations per second of in-process functions, alternated like HTTP variants. */
export interface OpsScenario {
  kind: 'ops'
  name: string
  description: string
  baseline: string
  variants: OpsVariant[]
  checks?: Check[]
}

export interface CustomRow { [column: string]: string | number }

export interface CustomResult {
  rows: CustomRow[]
  /** named pass/fail outcomes of the scenario's own claims */
  checks?: Array<{ name: string, pass: boolean, detail: string }>
  notes?: string[]
}

/** Anything that is not a throughput comparison (e.g. queries saved by a cache on a trace). */
export interface CustomScenario {
  kind: 'custom'
  name: string
  description: string
  run: (ctx: RunContext) => Promise<CustomResult>
}

export type Scenario = HttpScenario | OpsScenario | CustomScenario

export interface RunContext {
  quick: boolean
  log: (line: string) => void
}

export interface Timing {
  /** seconds of measured load per variant per round */
  duration: number
  /** seconds of warm-up per variant: for HTTP in every round (each round starts fresh processes), for ops once */
  warmup: number
  rounds: number
  /** HTTP: each variant's `duration` is measured in this many slices, interleaved with the other variants' @default 1 */
  slices?: number
}

export interface VariantResult {
  name: string
  /** mean over rounds: requests (or operations) per second */
  rps: number
  p50: number | null
  p99: number | null
  /** median over rounds of rps / baseline rps of the same round; 1 for the baseline */
  ratio: number
  perRound: number[]
  errors: number
  non2xx: number
}

export interface CheckResult { name: string, pass: boolean, detail: string }

export interface ScenarioResult {
  scenario: string
  kind: Scenario['kind']
  description: string
  baseline?: string
  quick: boolean
  timing?: Timing
  variants?: VariantResult[]
  rows?: CustomRow[]
  checks: CheckResult[]
  notes?: string[]
  startedAt: string
  machine: { cpus: number, node: string, platform: string }
}

/** Identity helper that gives a scenario file its types. */
export function defineScenario<S extends Scenario> (scenario: S): S {
  return scenario
}
