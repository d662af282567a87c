/**
 * The capacity run's profiler: the example under the open-model mix at a few
 * fixed rates, with what makes its tail. Per step: latency and 5xx, Redis
 * commands per API request by command, the app's event-loop delay and GC
 * pauses, every Redis command's latency as the app saw it, the pool's
 * acquire waits (its /metrics histogram), and optionally a CPU profile of the
 * app process (--cpu-prof <dir>, written when the server closes).
 *
 *   pnpm exec tsx benchmarks/capacity/profile.ts [--users 100000] [--virtual 2000]
 *     [--rates 700,1000,1400] [--step 20] [--cpu-prof /tmp/prof] [--env K=V ...] [--ab K=V ...]
 *
 * `--ab K=V`: a second app process with these variables too, alive at the
 * same time, the two measured in alternating slices at each rate (A B B A):
 * only same-run comparisons mean anything on a shared machine.
 */
import { randomBytes } from 'node:crypto'
import { setup, type Fixture } from './fixture.js'
import { runOpen, type Req } from './load.js'
import { measureStep, perRequest } from './measure.js'
import { logInMany, mixSource } from './mix.js'
import { pin, startServer, type Server } from './process.js'
import { appEnv, FULL, warm } from './run.js'
import type { Diagnostics } from './server.js'

const args = process.argv.slice(2)
const arg = (name: string, fallback: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : fallback }
const users = Number(arg('users', '100000'))
const virtual = Number(arg('virtual', '2000'))
const rates = arg('rates', '700,1000,1400').split(',').map(Number)
const stepS = Number(arg('step', '20'))
const prof = arg('cpu-prof', '')
const pairs = (flag: string) => Object.fromEntries(args.flatMap((a, i) => args[i - 1] === flag ? [a.split('=') as [string, string]] : []))
const extraEnv = pairs('--env')
const abEnv = pairs('--ab')

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

/** A counter of the Prometheus text by label set (the labels as written). */
function counter (text: string, name: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const labels = line.slice(name.length + 1, line.lastIndexOf('}'))
    out.set(labels, (out.get(labels) ?? 0) + Number(line.split(' ').pop()))
  }
  return out
}

function delta (a: Map<string, number>, b: Map<string, number>): string {
  return [...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
}

async function slice (name: string, app: Server, rate: number): Promise<void> {
  const diag = async () => await (await fetch(`${app.url}/__capacity/diagnostics`)).json() as Diagnostics
  const metrics = async () => await (await fetch(`${app.url}/metrics`)).text()
  await diag()
  const text0 = await metrics()
  const m0 = histogram(text0, 'headroom_pool_acquire_wait_seconds')
  const step = await measureStep(app, fx!, () => runOpen(app.url, rate, stepS, next!))
  const d = await diag()
  const text1 = await metrics()
  const m1 = histogram(text1, 'headroom_pool_acquire_wait_seconds')
  const pr = perRequest(step)
  const api = Math.max(1, step.apiRequests)
  const waits = m1.count - m0.count
  const slow = [...m1.buckets].filter(([le]) => le !== '+Inf' && Number(le) <= 0.01).pop()
  const slowWaits = slow ? waits - (slow[1] - (m0.buckets.get(slow[0]) ?? 0)) : Number.NaN
  console.log(`${name} ${rate} req/s: ok ${step.throughput.toFixed(0)}/s p50 ${step.p50.toFixed(1)} p95 ${step.p95.toFixed(1)} p99 ${step.p99.toFixed(1)} max ${step.max.toFixed(0)} ms, ` +
    `${step.e5xx} 5xx (${step.e503} 503), ${step.e4xx} 4xx, ${step.errors} errors, lag p99 ${step.lagP99.toFixed(1)} ms`)
  console.log(`  app CPU ${pr.appCpuMsPerReq.toFixed(3)} ms/req (${(step.costs.appCpuS / step.durationS * 100).toFixed(0)} % of its core), statements ${pr.statementsPerApiReq.toFixed(3)}/API req`)
  console.log(`  Redis ${pr.redisCmdsPerApiReq.toFixed(2)} commands/API req, ${(step.costs.redisCpuS * 1000 / api).toFixed(3)} ms Redis CPU/API req: ${Object.entries(step.costs.redisCommands).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / api).toFixed(2)}`).join(', ')}`)
  console.log(`  event loop delay p50 ${d.loop.p50.toFixed(1)} p99 ${d.loop.p99.toFixed(1)} max ${d.loop.max.toFixed(1)} ms; GC ${d.gc.count} pauses, ${d.gc.totalMs.toFixed(0)} ms total, max ${d.gc.maxMs.toFixed(1)} ms`)
  console.log(`  Redis latency seen by the app (${d.redis.count} commands): p50 ${d.redis.p50.toFixed(2)} p99 ${d.redis.p99.toFixed(2)} max ${d.redis.max.toFixed(1)} ms`)
  console.log(`  shed (503): ${delta(counter(text0, 'headroom_health_shed_requests_total'), counter(text1, 'headroom_health_shed_requests_total'))}; pool errors: ${delta(counter(text0, 'headroom_pool_errors_total'), counter(text1, 'headroom_pool_errors_total'))}`)
  console.log(`  pool acquire waits: ${waits}, mean ${(waits > 0 ? (m1.sum - m0.sum) / waits * 1000 : 0).toFixed(2)} ms, over 10 ms: ${slowWaits}`)
}

let fx: Fixture | undefined
let next: (() => Req) | undefined

async function main () {
  pin(process.pid, 0)
  fx = await setup(users, { users: 1, transactionsPerUser: 10 }, console.log)
  try {
    const env = { ...appEnv(fx, randomBytes(32).toString('hex'), 'on', FULL), ...extraEnv }
    const variants: Array<{ name: string, app: Server }> = [{ name: 'A', app: await startServer(env, 60_000, prof === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', prof]) }]
    if (Object.keys(abEnv).length > 0) variants.push({ name: 'B', app: await startServer({ ...env, ...abEnv }, 60_000, []) })
    try {
      const t0 = Date.now()
      const vus = await logInMany(variants[0]!.app.url, fx.firstUserId, fx.users, virtual)
      for (const v of variants) await warm(v.app.url, vus)
      console.log(`${vus.length} virtual users over ${fx.users} seeded, logged in and warmed in ${((Date.now() - t0) / 1000).toFixed(0)} s; env ${JSON.stringify(extraEnv)}${variants.length > 1 ? `; B: ${JSON.stringify(abEnv)}` : ''}`)
      next = mixSource(vus)
      for (const v of variants) await runOpen(v.app.url, 100, 5, next)
      for (const rate of rates) {
        const order = variants.length > 1 ? [variants[0]!, variants[1]!, variants[1]!, variants[0]!] : variants
        for (const v of order) await slice(v.name, v.app, rate)
      }
    } finally {
      await Promise.all(variants.map((v) => v.app.close()))
    }
  } finally {
    await fx.close()
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
