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
import { loadConfig } from '../../examples/finance-api/src/config.js'
import { InsightsModel } from '../../examples/finance-api/src/insights.js'
import { MarketClient } from '../../examples/finance-api/src/market.js'
import { createApp } from '../../examples/finance-api/src/server.js'

export interface Counters { pid: number, cpuUserUs: number, cpuSystemUs: number, quoteCalls: number, insightCalls: number }

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
  return app
}
