/**
 * The capacity run's app server: the example built by its own createApp from
 * the environment, with the providers injected so their calls can be
 * counted, and one extra route, GET /__capacity, that reports this process's
 * pid, CPU time and provider calls. Forked by @headroom/benchmarks'
 * startServer (pinned to core 1, plain Node).
 *
 * CAPACITY_CACHE=off is the seed's "before" for the caching claim: every
 * cache wrap() runs its loader (the summary, quotes and insights namespaces
 * share one class; its wrap is replaced in this process only). Writes still
 * delete their summary entry in Redis, which is all the cache costs then.
 */
import { createHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { loadConfig } from '../../examples/finance-api/src/config.js'
import { InsightsModel } from '../../examples/finance-api/src/insights.js'
import { MarketClient } from '../../examples/finance-api/src/market.js'
import { createApp } from '../../examples/finance-api/src/server.js'

export interface Counters { pid: number, cpuUserUs: number, cpuSystemUs: number, quoteCalls: number, insightCalls: number }

/** Since the last reset: event-loop delay (ms) and garbage-collection pauses, for the profile run (profile.ts). */
export interface Diagnostics {
  loop: { p50: number, p99: number, max: number }
  gc: { count: number, totalMs: number, maxMs: number }
  /** every Redis command the app's standalone clients sent, from sendCommand to its reply (event-loop delay included) */
  redis: { count: number, p50: number, p99: number, max: number }
}

function diagnostics () {
  const loop = monitorEventLoopDelay({ resolution: 5 })
  loop.enable()
  const redis = createHistogram()
  const proto = Redis.prototype as unknown as { sendCommand (c: { promise: Promise<unknown> }, ...rest: unknown[]): unknown }
  const send = proto.sendCommand
  proto.sendCommand = function sendCommand (command, ...rest) {
    const t = process.hrtime.bigint()
    const done = () => { redis.record(Math.max(1, Number(process.hrtime.bigint() - t))) }
    command.promise.then(done, done)
    return send.call(this, command, ...rest)
  }
  const gc = { count: 0, totalMs: 0, maxMs: 0 }
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { gc.count++; gc.totalMs += e.duration; gc.maxMs = Math.max(gc.maxMs, e.duration) }
  }).observe({ entryTypes: ['gc'] })
  return (): Diagnostics => {
    const out = {
      loop: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      gc: { ...gc },
      redis: { count: redis.count, p50: redis.percentile(50) / 1e6, p99: redis.percentile(99) / 1e6, max: redis.max / 1e6 }
    }
    loop.reset()
    redis.reset()
    Object.assign(gc, { count: 0, totalMs: 0, maxMs: 0 })
    return out
  }
}

export default async function build (env: NodeJS.ProcessEnv) {
  const config = loadConfig(env)
  const market = new MarketClient({ latencyMs: config.market.latencyMs, failureRate: config.market.failureRate })
  const insights = new InsightsModel(config.insights.costMs)
  const app = await createApp(config, { market, insights })
  if (env.CAPACITY_CACHE === 'off') {
    const namespaces = [app.cache.ns('quotes'), (app.cache.ns('summary') as unknown as { forUser (u: string): object }).forUser('0')]
    for (const ns of namespaces) {
      const proto = Object.getPrototypeOf(ns) as { wrap: unknown }
      proto.wrap = function wrap (_key: string, factory: () => Promise<unknown>) { return factory() }
    }
  }
  app.get('/__capacity', async (): Promise<Counters> => {
    const cpu = process.cpuUsage()
    return { pid: process.pid, cpuUserUs: cpu.user, cpuSystemUs: cpu.system, quoteCalls: market.calls, insightCalls: insights.calls }
  })
  const diag = diagnostics()
  app.get('/__capacity/diagnostics', async (): Promise<Diagnostics> => diag())
  return app
}
