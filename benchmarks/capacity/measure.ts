/**
 * A load step with what it cost every shared resource: the app process's
 * CPU (/proc/<pid>/stat), PostgreSQL's CPU (postmaster and every backend) and
 * statements (pg_stat_statements), Redis's CPU and commands by type (INFO),
 * the provider calls the app made (its injected clients), and the most
 * database connections in use at once (pg_stat_activity, sampled every
 * 250 ms).
 */
import { commandDelta, connectionsInUse, postgresCpuSeconds, processCpuSeconds, redisSnapshot, statements, type Fixture } from './fixture.js'
import type { StepResult } from './load.js'
import type { Server } from './process.js'

export interface Costs {
  appCpuS: number
  /** CPU of the backends serving the app's database */
  pgCpuS: number
  /** CPU of the whole PostgreSQL server: backends, background processes, this run's probe */
  pgServerCpuS: number
  statements: number
  redisCpuS: number
  redisCommands: Record<string, number>
  quoteCalls: number
  insightCalls: number
  maxActiveConnections: number
  maxOpenConnections: number
}

export interface Step extends StepResult {
  apiRequests: number
  costs: Costs
}

interface Counters { quoteCalls: number, insightCalls: number }

async function counters (server: Server): Promise<Counters> {
  const res = await fetch(`${server.url}/__capacity`)
  return await res.json() as Counters
}

export async function measureStep (server: Server, fx: Fixture, run: () => Promise<StepResult>): Promise<Step> {
  const postmaster = fx.pg.pid()
  if (postmaster === null) throw new Error('the private PostgreSQL is not running')
  const first = new Map<number, number>()
  const last = new Map<number, number>()
  let maxActive = 0
  let maxOpen = 0
  const sample = async (initial: boolean) => {
    const c = await connectionsInUse(fx)
    for (const pid of c.pids) {
      const cpu = processCpuSeconds(pid)
      if (!Number.isFinite(cpu)) continue
      if (initial) first.set(pid, cpu)
      last.set(pid, cpu)
    }
    if (initial) return
    maxActive = Math.max(maxActive, c.active)
    maxOpen = Math.max(maxOpen, c.total)
    if (c.summarySql !== null) fx.summarySql ??= c.summarySql
  }
  await sample(true)
  const before = { app: processCpuSeconds(server.pid), pg: postgresCpuSeconds(postmaster), st: await statements(fx), redis: await redisSnapshot(fx.redis.url), c: await counters(server) }
  const state = { sampling: true }
  const sampler = (async () => {
    while (state.sampling) {
      await sample(false)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  })()
  let result: StepResult
  try {
    result = await run()
  } finally {
    state.sampling = false
    await sampler
  }
  const after = { app: processCpuSeconds(server.pid), pg: postgresCpuSeconds(postmaster), st: await statements(fx), redis: await redisSnapshot(fx.redis.url), c: await counters(server) }
  await sample(false)
  let backends = 0
  for (const [pid, cpu] of last) backends += cpu - (first.get(pid) ?? 0)
  return {
    ...result,
    apiRequests: result.sent - (result.byKind.static ?? 0),
    costs: {
      appCpuS: after.app - before.app,
      pgCpuS: backends,
      pgServerCpuS: after.pg - before.pg,
      statements: after.st - before.st,
      redisCpuS: after.redis.cpuS - before.redis.cpuS,
      redisCommands: commandDelta(before.redis, after.redis),
      quoteCalls: after.c.quoteCalls - before.c.quoteCalls,
      insightCalls: after.c.insightCalls - before.c.insightCalls,
      maxActiveConnections: maxActive,
      maxOpenConnections: maxOpen
    }
  }
}

/** Per-request figures of a measured step. */
export function perRequest (s: Step) {
  const api = Math.max(1, s.apiRequests)
  const redisCommands = Object.values(s.costs.redisCommands).reduce((a, b) => a + b, 0)
  return {
    appCpuMsPerReq: (s.costs.appCpuS * 1000) / Math.max(1, s.sent),
    pgCpuMsPerApiReq: (s.costs.pgCpuS * 1000) / api,
    pgServerCpuMsPerApiReq: (s.costs.pgServerCpuS * 1000) / api,
    statementsPerApiReq: s.costs.statements / api,
    redisCpuMsPerApiReq: (s.costs.redisCpuS * 1000) / api,
    redisCmdsPerApiReq: redisCommands / api,
    quoteCallsPerApiReq: s.costs.quoteCalls / api,
    insightCallsPerApiReq: s.costs.insightCalls / api
  }
}
