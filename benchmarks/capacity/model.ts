/**
 * The capacity model: pure functions from measured figures to the tables an
 * operator needs. Every input is a measurement of the run (see cli.ts) or a
 * stated assumption of the traffic model; nothing here reads the clock, the
 * network or a file, so test/model.test.ts can check it exactly.
 */

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** Universal Scalability Law: X(N) = λN / (1 + σ(N − 1) + κN(N − 1)). */
export interface Usl { lambda: number, sigma: number, kappa: number }

export function uslThroughput (u: Usl, n: number): number {
  return (u.lambda * n) / (1 + u.sigma * (n - 1) + u.kappa * n * (n - 1))
}

/** The concurrency where X(N) peaks, √((1 − σ) / κ), at least 1; Infinity without coherency cost. */
export function uslPeak (u: Usl): number {
  return u.kappa > 0 ? Math.max(1, Math.sqrt(Math.max(0, 1 - u.sigma) / u.kappa)) : Number.POSITIVE_INFINITY
}

/**
 * Fits σ and κ by least squares on the linearised form
 * N / C(N) − 1 = σ(N − 1) + κN(N − 1), with C(N) = X(N) / λ and λ = X(1)
 * (the throughput at N = 1 must be among the points). Negative coefficients
 * (noise) are clamped to 0 and the other refitted alone.
 */
export function fitUsl (points: Array<{ n: number, x: number }>): Usl {
  const one = points.find((p) => p.n === 1)
  if (!one || one.x <= 0) throw new Error('fitUsl needs a positive throughput at N = 1')
  const lambda = one.x
  const rows = points.filter((p) => p.n > 1 && p.x > 0).map((p) => ({ a: p.n - 1, b: p.n * (p.n - 1), y: p.n / (p.x / lambda) - 1 }))
  if (rows.length === 0) return { lambda, sigma: 0, kappa: 0 }
  const s = (f: (r: typeof rows[number]) => number) => rows.reduce((acc, r) => acc + f(r), 0)
  const aa = s((r) => r.a * r.a); const bb = s((r) => r.b * r.b); const ab = s((r) => r.a * r.b)
  const ay = s((r) => r.a * r.y); const by = s((r) => r.b * r.y)
  const det = aa * bb - ab * ab
  let sigma = det !== 0 ? (ay * bb - by * ab) / det : ay / aa
  let kappa = det !== 0 ? (by * aa - ay * ab) / det : 0
  if (sigma < 0) { sigma = 0; kappa = Math.max(0, by / bb) }
  if (kappa < 0) { kappa = 0; sigma = Math.max(0, ay / aa) }
  return { lambda, sigma, kappa }
}

/** A traffic model: how much a daily user asks for in the busiest hour, and how the day is shaped. */
export interface TrafficModel {
  name: string
  why: string
  /** API requests per daily user in the busiest hour */
  apiPerUserPeakHour: number
  /** share of a day's traffic in its busiest hour */
  peakHourShare: number
  /** users active at once (within a minute) as a share of daily users */
  concurrentShare: number
}

/** Figures measured by the run that the model scales. */
export interface Measured {
  /** one app process on one core, requests/s of the mix with p99 < 100 ms */
  capacityRps: number
  /** share of the mix that is static files */
  staticShare: number
  dbQueriesPerApiReq: number
  /** PostgreSQL CPU per API request, ms */
  pgCpuMsPerApiReq: number
  /** Redis commands per API request (INFO commandstats: script-internal calls included) */
  redisCmdsPerApiReq: number
  /** Redis CPU per API request, ms (one Redis shard is one core) */
  redisCpuMsPerApiReq: number
  bytesPerSession: number
  bytesPerSummary: number
  bytesPerInsight: number
  bytesPerRateKey: number
  quoteCallsPerApiReq: number
  insightCallsPerApiReq: number
  apiBytesPerResponse: number
  staticBytesPerResponse: number
  /** the app's pool size per process */
  poolMax: number
}

export interface Sizing {
  users: number
  concurrent: number
  peakApiRps: number
  peakRps: number
  appProcesses: number
  appHosts: number
  dbQps: number
  pgCores: number
  pgPrimary: string
  pgPrimaryVcpu: number
  pgMultiAz: boolean
  pgReplicas: number
  poolConnections: number
  maxConnections: number
  pooler: 'not needed' | 'advised' | 'necessary'
  redisMemoryMiB: number
  redisOps: number
  redisNode: string
  redisShards: number
  redisReplicasPerShard: number
  lbPeakLcu: number
  /** the month's average: an average hour carries 1/24 of a day, the peak hour peakHourShare */
  lbAvgLcu: number
  monthlyApiRequests: number
  monthlyStaticRequests: number
  cdnGbMonth: number
}

/** Sizing rules: utilisation targets leave room for a spike and for one instance to fail. */
/**
 * Sizing targets. At least two app hosts (two availability zones: losing a
 * host or a zone must not take the service down), each running one process
 * per vCPU it is paid for.
 */
export const TARGET = { appUtil: 0.7, pgUtil: 0.6, redisUtil: 0.5, minAppHosts: 2, processesPerHost: 2, redisOverhead: 1.3 }

export interface NodeType { type: string, vcpu: number, memoryGiB: number, usdPerHour: number }

/** RDS's default max_connections: LEAST(DBInstanceClassMemory / 9531392, 5000). */
export function rdsMaxConnections (memoryGiB: number): number {
  return Math.min(5000, Math.floor((memoryGiB * 1024 ** 3) / 9531392))
}

/** Burstable types (t3/t4g…) sustain only their CPU baseline, about 20 % of their vCPUs; others sustain all of them. */
export const BURSTABLE_BASELINE = 0.2
function sustains (t: NodeType, cores: number): boolean {
  return !/\.t\d/.test(t.type) || cores <= t.vcpu * BURSTABLE_BASELINE
}

export function size (users: number, t: TrafficModel, m: Measured, pgTypes: NodeType[], redisTypes: NodeType[]): Sizing {
  const peakApiRps = (users * t.apiPerUserPeakHour) / 3600
  const peakRps = peakApiRps / (1 - m.staticShare)
  const appHosts = Math.max(TARGET.minAppHosts, Math.ceil(Math.ceil(peakRps / (m.capacityRps * TARGET.appUtil)) / TARGET.processesPerHost))
  const appProcesses = appHosts * TARGET.processesPerHost
  const dbQps = peakApiRps * m.dbQueriesPerApiReq
  const pgCores = (peakApiRps * m.pgCpuMsPerApiReq) / 1000 / TARGET.pgUtil
  const pgSized = [...pgTypes].filter((p) => sustains(p, pgCores)).sort((a, b) => a.vcpu - b.vcpu)
  const biggest = pgSized.at(-1)!
  // the primary takes what one node can; reads beyond it go to replicas
  const primary = pgSized.find((p) => p.vcpu >= pgCores) ?? biggest
  const pgReplicas = pgCores > biggest.vcpu ? Math.ceil(pgCores / biggest.vcpu) - 1 : 0
  const poolConnections = appProcesses * m.poolMax
  const maxConnections = rdsMaxConnections(primary.memoryGiB)
  // per node: the processes' pools spread over primary + replicas only for reads; the primary sees them all
  const pooler = poolConnections > maxConnections ? 'necessary' : poolConnections > primary.vcpu * 25 ? 'advised' : 'not needed'
  const concurrent = users * t.concurrentShare
  const redisBytes = (users * m.bytesPerSession + concurrent * (m.bytesPerSummary + m.bytesPerInsight + m.bytesPerRateKey)) * TARGET.redisOverhead
  const redisMemoryMiB = redisBytes / 2 ** 20
  const redisOps = peakApiRps * m.redisCmdsPerApiReq
  const byOps = Math.ceil((peakApiRps * m.redisCpuMsPerApiReq) / 1000 / TARGET.redisUtil)
  const redisSized = [...redisTypes].filter((r) => sustains(r, (peakApiRps * m.redisCpuMsPerApiReq) / 1000 / TARGET.redisUtil / Math.max(1, byOps)))
    .sort((a, b) => a.memoryGiB - b.memoryGiB)
  const node = redisSized.find((r) => r.memoryGiB * 1024 * 0.75 >= redisMemoryMiB / Math.max(1, byOps)) ?? redisSized.at(-1)!
  const byMem = Math.ceil(redisMemoryMiB / (node.memoryGiB * 1024 * 0.75))
  const daily = users * t.apiPerUserPeakHour / t.peakHourShare
  const monthlyApiRequests = daily * 30
  const monthlyStaticRequests = monthlyApiRequests * m.staticShare / (1 - m.staticShare)
  // ALB LCU at peak: the largest of its dimensions (new connections: a concurrent user reconnects once a minute)
  const gbPerHour = (peakRps * 3600 * m.apiBytesPerResponse) / 1e9
  const lbPeakLcu = Math.max(concurrent / 60 / 25, concurrent / 3000, gbPerHour, (peakRps * 2) / 1000)
  return {
    users,
    concurrent,
    peakApiRps,
    peakRps,
    appProcesses,
    appHosts,
    dbQps,
    pgCores,
    pgPrimary: primary.type,
    pgPrimaryVcpu: primary.vcpu,
    pgMultiAz: users >= 10_000,
    pgReplicas,
    poolConnections,
    maxConnections,
    pooler,
    redisMemoryMiB,
    redisOps,
    redisNode: node.type,
    redisShards: Math.max(1, byOps, byMem),
    redisReplicasPerShard: users >= 10_000 ? 1 : 0,
    lbPeakLcu,
    lbAvgLcu: lbPeakLcu * (1 / 24) / t.peakHourShare,
    monthlyApiRequests,
    monthlyStaticRequests,
    cdnGbMonth: (monthlyStaticRequests * m.staticBytesPerResponse) / 1e9
  }
}
