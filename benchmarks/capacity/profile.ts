/**
 * The capacity run's profiler: the example under the open-model mix at a few
 * fixed rates, with what makes its tail. Per step: latency and 5xx, Redis
 * commands per API request by command, the app's event-loop delay and GC
 * pauses, every Redis command's latency as the app saw it, the pool's
 * acquire waits (its /metrics histogram), and optionally a CPU profile of the
 * app process (--cpu-prof <dir>, written when the server closes).
 *
 *   pnpm exec tsx benchmarks/capacity/profile.ts [--users 100000] [--virtual 2000]
 *     [--rates 700,1000,1400] [--step 20] [--cpu-prof /tmp/prof] [--env K=V ...]
 */
import { randomBytes } from 'node:crypto'
import { setup } from './fixture.js'
import { runOpen } from './load.js'
import { measureStep, perRequest } from './measure.js'
import { logInMany, mixSource } from './mix.js'
import { pin, startServer } from './process.js'
import { appEnv, FULL, warm } from './run.js'
import type { Diagnostics } from './server.js'

const args = process.argv.slice(2)
const arg = (name: string, fallback: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : fallback }
const users = Number(arg('users', '100000'))
const virtual = Number(arg('virtual', '2000'))
const rates = arg('rates', '700,1000,1400').split(',').map(Number)
const stepS = Number(arg('step', '20'))
const prof = arg('cpu-prof', '')
const extraEnv = Object.fromEntries(args.flatMap((a, i) => args[i - 1] === '--env' ? [a.split('=') as [string, string]] : []))

/** Sum and bucket counts of one histogram of the Prometheus text, all label sets together. */
function histogram (text: string, name: string): { count: number, sum: number, buckets: Map<string, number> } {
  const out = { count: 0, sum: 0, buckets: new Map<string, number>() }
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_count`)) out.count += Number(line.split(' ').pop())
    else if (line.startsWith(`${name}_sum`)) out.sum += Number(line.split(' ').pop())
    else if (line.startsWith(`${name}_bucket`)) {
      const le = /le="([^"]+)"/.exec(line)![1]!
      out.buckets.set(le, (out.buckets.get(le) ?? 0) + Number(line.split(' ').pop()))
    }
  }
  return out
}

async function main () {
  pin(process.pid, 0)
  const fx = await setup(users, { users: 1, transactionsPerUser: 10 }, console.log)
  try {
    const env = { ...appEnv(fx, randomBytes(32).toString('hex'), 'on', FULL), ...extraEnv }
    const app = await startServer(env, 60_000, prof === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', prof])
    try {
      const t0 = Date.now()
      const vus = await logInMany(app.url, fx.firstUserId, fx.users, virtual)
      await warm(app.url, vus)
      console.log(`${vus.length} virtual users over ${fx.users} seeded, logged in and warmed in ${((Date.now() - t0) / 1000).toFixed(0)} s; env ${JSON.stringify(extraEnv)}`)
      const next = mixSource(vus)
      await runOpen(app.url, 100, 5, next)
      const diag = async () => await (await fetch(`${app.url}/__capacity/diagnostics`)).json() as Diagnostics
      const metrics = async () => await (await fetch(`${app.url}/metrics`)).text()
      for (const rate of rates) {
        await diag()
        const m0 = histogram(await metrics(), 'headroom_pool_acquire_wait_seconds')
        const step = await measureStep(app, fx, () => runOpen(app.url, rate, stepS, next))
        const d = await diag()
        const m1 = histogram(await metrics(), 'headroom_pool_acquire_wait_seconds')
        const pr = perRequest(step)
        const api = Math.max(1, step.apiRequests)
        const waits = m1.count - m0.count
        const slow = [...m1.buckets].filter(([le]) => le !== '+Inf' && Number(le) <= 0.01).pop()
        const slowWaits = slow ? waits - (slow[1] - (m0.buckets.get(slow[0]) ?? 0)) : Number.NaN
        console.log(`${rate} req/s: ok ${step.throughput.toFixed(0)}/s p50 ${step.p50.toFixed(1)} p95 ${step.p95.toFixed(1)} p99 ${step.p99.toFixed(1)} max ${step.max.toFixed(0)} ms, ` +
          `${step.e5xx} 5xx (${step.e503} 503), ${step.e4xx} 4xx, ${step.errors} errors, lag p99 ${step.lagP99.toFixed(1)} ms`)
        console.log(`  app CPU ${pr.appCpuMsPerReq.toFixed(3)} ms/req (${(step.costs.appCpuS / step.durationS * 100).toFixed(0)} % of its core), statements ${pr.statementsPerApiReq.toFixed(3)}/API req`)
        console.log(`  Redis ${pr.redisCmdsPerApiReq.toFixed(2)} commands/API req: ${Object.entries(step.costs.redisCommands).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / api).toFixed(2)}`).join(', ')}`)
        console.log(`  event loop delay p50 ${d.loop.p50.toFixed(1)} p99 ${d.loop.p99.toFixed(1)} max ${d.loop.max.toFixed(1)} ms; GC ${d.gc.count} pauses, ${d.gc.totalMs.toFixed(0)} ms total, max ${d.gc.maxMs.toFixed(1)} ms`)
        console.log(`  Redis latency seen by the app (${d.redis.count} commands): p50 ${d.redis.p50.toFixed(2)} p99 ${d.redis.p99.toFixed(2)} max ${d.redis.max.toFixed(1)} ms`)
        console.log(`  pool acquire waits: ${waits}, mean ${(waits > 0 ? (m1.sum - m0.sum) / waits * 1000 : 0).toFixed(2)} ms, over 10 ms: ${slowWaits}`)
      }
    } finally {
      await app.close()
    }
  } finally {
    await fx.close()
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
