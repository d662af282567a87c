/**
 * The topology test (`pnpm test:topology`): the production build behind the
 * repository's nginx configuration, on real PostgreSQL (primary + two
 * streaming replicas) and a real Redis Cluster (3 masters + 3 replicas), all
 * on loopback, under a steady open-model load of logged-in users, through
 * six disruptions. Prints one table, writes it to RESULTS.md, and exits 1
 * when an acceptance line does not hold. README.md explains the figures.
 */
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { DEFAULT_COMMAND_TIMEOUT_MS } from '@headroom/core'
import { DEFAULT_ACQUIRE_TIMEOUT_MS } from '@headroom/pool'
import { sleep, waitFor } from '@headroom/testing'
import { loadConfig } from '../src/config.js'
import { HttpClient, Load, probeRateLimit, setupSessionsLost, staleAfterSignup, User, type ProbeResult, type Sample } from './load.js'
import { startStack, Teardowns, type Stack } from './stack.js'

const HERE = fileURLToPath(new URL('./', import.meta.url))
const QUICK = process.argv.includes('--quick')

/** the load: USERS logged in at the start, RATE requests/s in total through nginx */
const USERS = 64
const RATE = 60
/** the app's per-user limit for this run: a load user sends ~20 per window, the probe sends PROBE_REQUESTS */
const RATE_LIMIT_MAX = 80
const RATE_LIMIT_WINDOW_MS = 20_000
const PROBE_REQUESTS = 110
const PROBE_PER_SECOND = 40
const DRAIN_DELAY_MS = 1500
/** load before the disruption and after it has ended */
const BEFORE_MS = 2000
const AFTER_MS = 3000
/** the whole run stops by itself past this */
const WATCHDOG_MS = 9 * 60_000

/**
 * One Redis command timeout plus the scheduling of a loaded 2-core machine (load generator, nginx,
 * 3 instances, PostgreSQL and Redis share it: 351 ms was seen against + 100 ms at load 7): at least
 * 200 ms, more when the longest request of the same run before a fault (this scenario's or an
 * earlier one's: a scenario's own calm second holds few requests) was longer, so the slack
 * follows the machine's speed. Two timeouts in a row (500 ms + that request's own work) stay above it:
 * that is what the bound exists to catch.
 */
const REDIS_SLACK_MS = 200

interface Check { ok: boolean, what: string }

interface Figures {
  id: number
  name: string
  requests: number
  /** answers that were not 2xx/3xx (0: no HTTP answer), by status */
  failed: Map<string, number>
  /** failed requests the scenario allows (in flight on a killed instance) */
  excused: number
  acked: number
  lost: number
  duplicated: number
  /** writes answered with an error that were committed anyway */
  committedUnacked: number
  longestMs: number
  longest: string
  /** from the fault to the end of the last failed request */
  recoveryS: number
  forcedLogins: number
  probe: ProbeResult | null
  crashes: number
  notes: string[]
  checks: Check[]
}

interface Ctx {
  stack: Stack
  notes: string[]
  /** marks the instant of the disruption (and starts the rate-limit probe) */
  fault (): void
  faultAt: number
  /** scenario-specific instants, e.g. the primary's return */
  marks: Record<string, number>
  /** the longest request before the fault, in this scenario and every earlier one: what the machine costs a healthy request */
  calmMs: number
}

/** the longest request seen before any scenario's fault so far */
let longestCalmMs = 0

interface Scenario {
  id: number
  name: string
  run (ctx: Ctx): Promise<void>
  /** acceptance lines beyond the common ones */
  judge (f: Figures, samples: Sample[], ctx: Ctx): Check[]
  /** which failed samples the scenario allows */
  excuse? (s: Sample, ctx: Ctx): boolean
  /** whether the shared rate limit must hold (the Redis failover only counts) */
  strictRateLimit: boolean
  /** whether any failed request fails the scenario */
  zeroFailures: boolean
}

const now = () => performance.now()
const ms = (x: number) => `${Math.round(x)} ms`
/** an instant relative to the disruption: +1200 ms, -300 ms */
const at = (t: number, fault: number) => `${t >= fault ? '+' : '-'}${ms(Math.abs(t - fault))}`

const scenarios: Scenario[] = [
  {
    id: 1,
    name: 'rolling restart of the 3 instances',
    strictRateLimit: true,
    zeroFailures: true,
    async run (ctx) {
      ctx.fault()
      for (const instance of ctx.stack.instances.slice(0, 3)) {
        const t0 = now()
        const code = await instance.terminate()
        const exited = now()
        await instance.start()
        ctx.notes.push(`${instance.name}: exit ${code} after ${ms(exited - t0)}, ready ${ms(now() - exited)} later`)
      }
    },
    judge: () => []
  },
  {
    id: 2,
    name: 'SIGKILL of one instance, then its restart',
    strictRateLimit: true,
    zeroFailures: true,
    async run (ctx) {
      const victim = ctx.stack.instances[1]!
      ctx.fault()
      await victim.kill()
      ctx.marks.killed = now()
      await sleep(1000)
      const t0 = now()
      await victim.start()
      ctx.notes.push(`${victim.name} killed, restarted and ready in ${ms(now() - t0)}`)
    },
    // a request the killed process had accepted cannot be answered; nginx retries the GETs, never a POST
    excuse: (s, ctx) => s.t0 <= ctx.marks.killed! && s.t1 >= ctx.faultAt,
    judge: () => []
  },
  {
    id: 3,
    name: 'Redis master killed, replica promoted',
    strictRateLimit: false,
    zeroFailures: false,
    async run (ctx) {
      const redis = ctx.stack.redis!
      const master = (await redis.roles()).find((r) => r.role === 'master')!.node
      ctx.fault()
      await master.kill()
      const killed = now()
      await redis.healthy(30_000)
      ctx.notes.push(`master :${master.port} killed; every slot served again after ${ms(now() - killed)}`)
      await sleep(1000)
      await master.start()
      await redis.healthy(30_000)
      const role = (await redis.roles()).find((r) => r.node === master)?.role
      ctx.notes.push(`the old master restarted and rejoined as ${role ?? 'unknown'}`)
    },
    judge (f, samples, ctx) {
      const fiveXX = samples.filter((s) => s.status >= 500).length
      const calm = ctx.calmMs
      const bound = DEFAULT_COMMAND_TIMEOUT_MS + Math.max(REDIS_SLACK_MS, calm)
      return [
        { ok: fiveXX === 0, what: `zero 5xx (${fiveXX})` },
        {
          ok: f.longestMs <= bound,
          what: `no request longer than the Redis command timeout + max(${REDIS_SLACK_MS} ms, the longest before a fault so far: ${ms(calm)}) = ${ms(bound)} (longest ${f.longest})`
        }
      ]
    }
  },
  {
    id: 4,
    name: 'one PostgreSQL replica stopped, then started',
    strictRateLimit: true,
    zeroFailures: true,
    async run (ctx) {
      const replica = ctx.stack.replicas[0]
      ctx.fault()
      await replica.stop()
      await sleep(4000)
      await replica.start()
      await replica.caughtUp()
      ctx.notes.push(`replica :${replica.port} down for ${ms(now() - ctx.faultAt)}`)
    },
    judge: () => []
  },
  {
    id: 5,
    name: 'primary stopped for 5 s, then started',
    strictRateLimit: true,
    zeroFailures: false,
    async run (ctx) {
      const { primary } = ctx.stack
      ctx.fault()
      await primary.stop()
      ctx.marks.stopped = now()
      await sleep(5000)
      await primary.start()
      ctx.marks.returned = now()
      ctx.notes.push(`primary stopped ${ms(ctx.marks.stopped - ctx.faultAt)} after the fault, back at +${ms(ctx.marks.returned - ctx.faultAt)}`)
    },
    judge (f, samples, ctx) {
      const { stopped, returned } = ctx.marks as { stopped: number, returned: number }
      const failedWrites = samples.filter((s) => s.kind === 'write' && !okStatus(s.status))
      const notFast = failedWrites.filter((s) => s.status !== 503 || s.retryAfter === undefined || s.t1 - s.t0 > DEFAULT_ACQUIRE_TIMEOUT_MS)
      const failedReads = samples.filter((s) => s.kind !== 'write' && !okStatus(s.status))
      const firstWrite = samples.filter((s) => s.kind === 'write' && s.status === 201 && s.t1 >= returned).sort((a, b) => a.t1 - b.t1)[0]
      const firstWriteMs = firstWrite === undefined ? Infinity : firstWrite.t1 - returned
      const slowest503 = Math.max(0, ...failedWrites.map((s) => s.t1 - s.t0))
      const outside = failedWrites.filter((s) => s.t1 < ctx.faultAt || s.t0 > returned + 2000).length
      return [
        { ok: notFast.length === 0, what: `failed writes are 503 + Retry-After within the acquire timeout ${DEFAULT_ACQUIRE_TIMEOUT_MS} ms (${failedWrites.length} failed, slowest ${ms(slowest503)}, ${notFast.length} not so${notFast.length ? ': ' + describe(notFast) : ''})` },
        { ok: failedReads.length === 0, what: `reads keep working (${failedReads.length} failed${failedReads.length ? ': ' + describe(failedReads) : ''})` },
        { ok: firstWriteMs <= 2000, what: `first successful write ${Number.isFinite(firstWriteMs) ? ms(firstWriteMs) : 'never'} after the primary's return (≤ 2000 ms)` },
        { ok: outside === 0, what: `no write failed outside the outage (${outside}; stopped at +${ms(stopped - ctx.faultAt)})` }
      ]
    }
  },
  {
    id: 6,
    name: 'scale out to 4 (reload), then in to 3 (SIGTERM + reload)',
    strictRateLimit: true,
    zeroFailures: true,
    async run (ctx) {
      const { stack } = ctx
      ctx.fault()
      const t0 = now()
      const added = await stack.addInstance('app-4')
      const active = stack.instances.filter((i) => i.running)
      await stack.nginx.setUpstreams(active.map((i) => i.address))
      ctx.notes.push(`${added.name} ready in ${ms(now() - t0)}, nginx reloaded with ${active.length} upstreams`)
      await sleep(3000)
      const victim = stack.instances[0]!
      const exit = victim.terminate()
      await stack.nginx.setUpstreams(active.filter((i) => i !== victim).map((i) => i.address))
      const code = await exit
      ctx.notes.push(`${victim.name} SIGTERM + reload without it: exit ${code}`)
    },
    judge: () => []
  }
]

/** The probe was answered past the limit (else it says nothing), got no more than the limit, then 429s. */
function rateLimitHeld (p: ProbeResult): boolean {
  return p.ok + p.limited > RATE_LIMIT_MAX && p.ok <= RATE_LIMIT_MAX && p.limited > 0
}

function okStatus (status: number): boolean {
  return status >= 200 && status < 400
}

function describe (samples: Sample[], max = 4): string {
  const parts = samples.slice(0, max).map((s) => `${s.method} ${s.path} ${s.status || s.error} in ${ms(s.t1 - s.t0)}`)
  return parts.join('; ') + (samples.length > max ? `; +${samples.length - max} more` : '')
}

async function verifyWrites (stack: Stack, id: number, samples: Sample[]) {
  const { rows } = await stack.primary.query<{ description: string, n: string }>(
    'SELECT description, count(*)::text AS n FROM transactions WHERE description LIKE $1 GROUP BY description', [`topo:${id}:%`])
  const inDb = new Map(rows.map((r) => [r.description, Number(r.n)]))
  const writes = samples.filter((s) => s.kind === 'write')
  const acked = writes.filter((s) => s.status === 201)
  return {
    acked: acked.length,
    lost: acked.filter((s) => !inDb.has(s.description!)).length,
    duplicated: [...inDb.values()].filter((n) => n > 1).length,
    committedUnacked: writes.filter((s) => s.status !== 201 && inDb.has(s.description!)).length
  }
}

async function runScenario (stack: Stack, load: Load, scenario: Scenario, probeUser: User): Promise<Figures> {
  const crashesBefore = stack.instances.reduce((n, i) => n + i.crashes.length, 0)
  const forcedBefore = load.forcedLogins.length
  const firstSample = load.samples.length
  let probe: Promise<ProbeResult> | null = null
  const ctx: Ctx = {
    stack,
    notes: [],
    marks: {},
    faultAt: 0,
    calmMs: 0,
    fault () {
      ctx.faultAt = now()
      probe = probeRateLimit(probeUser, PROBE_REQUESTS, PROBE_PER_SECOND)
    }
  }
  const tag = String(scenario.id)
  load.start(tag)
  await sleep(BEFORE_MS)
  try {
    await scenario.run(ctx)
    await sleep(AFTER_MS)
  } finally {
    await load.stop()
  }
  const probed = probe === null ? null : await probe as ProbeResult
  // the next scenario starts from a healthy deployment, not from this one's
  // tail (sessions written to memory during a Redis outage wait for their write-back)
  const settleStart = now()
  await waitFor('every instance to report readiness pass', async () => {
    const states = await Promise.all(stack.instances.filter((i) => i.running).map((i) => i.healthy()))
    return states.every(Boolean)
  }, 60_000, 250).catch((err: Error) => ctx.notes.push(`not healthy again: ${err.message}`))
  const settled = now() - settleStart
  if (settled > 1000) ctx.notes.push(`every instance reported readiness \`pass\` again ${ms(settled)} after the load stopped`)
  const samples = load.samples.slice(firstSample)
  const writes = await verifyWrites(stack, scenario.id, samples)
  const failedSamples = samples.filter((s) => !okStatus(s.status))
  const excused = scenario.excuse ? failedSamples.filter((s) => scenario.excuse!(s, ctx)) : []
  const failed = new Map<string, number>()
  for (const s of failedSamples) {
    const key = s.status === 0 ? `no answer (${s.error})` : String(s.status)
    failed.set(key, (failed.get(key) ?? 0) + 1)
  }
  const longest = samples.reduce<Sample | null>((a, s) => a === null || s.t1 - s.t0 > a.t1 - a.t0 ? s : a, null)
  const lastFailure = Math.max(ctx.faultAt, ...failedSamples.map((s) => s.t1))
  const crashes = stack.instances.reduce((n, i) => n + i.crashes.length, 0) - crashesBefore
  const forced = load.forcedLogins.slice(forcedBefore)
  const f: Figures = {
    id: scenario.id,
    name: scenario.name,
    requests: samples.length,
    failed,
    excused: excused.length,
    ...writes,
    longestMs: longest === null ? 0 : longest.t1 - longest.t0,
    longest: longest === null ? '-' : `${ms(longest.t1 - longest.t0)} (${longest.method} ${longest.path} at ${at(longest.t0, ctx.faultAt)})`,
    recoveryS: (lastFailure - ctx.faultAt) / 1000,
    forcedLogins: forced.length,
    probe: probed,
    crashes,
    notes: ctx.notes,
    checks: []
  }
  const unexcused = failedSamples.length - excused.length
  const checks: Check[] = [
    { ok: f.lost === 0, what: `every write acknowledged with 201 is in PostgreSQL (${f.acked} acknowledged, ${f.lost} missing)` },
    { ok: f.duplicated === 0, what: `no write stored twice (${f.duplicated})` },
    { ok: crashes === 0, what: `no instance crashed (${crashes})` }
  ]
  if (scenario.zeroFailures) {
    checks.push({ ok: unexcused === 0, what: `zero failed requests${excused.length ? ` apart from ${excused.length} in flight on the killed instance` : ''} (${unexcused}${unexcused ? ': ' + describe(failedSamples.filter((s) => !excused.includes(s))) : ''})` })
    checks.push({ ok: forced.length === 0, what: `zero forced re-logins (${forced.length})` })
  }
  if (probed !== null) {
    const held = rateLimitHeld(probed)
    const others = Object.entries(probed.other).map(([k, n]) => `, ${n} × ${k}`).join('') + (probed.edgeLimited ? `, ${probed.edgeLimited} × 429 from the edge` : '')
    const line = `shared rate limit held: the probe got ${probed.ok} × 200 then ${probed.limited} × 429${others} for a limit of ${RATE_LIMIT_MAX}`
    if (scenario.strictRateLimit) checks.push({ ok: held, what: line })
    else if (probed.ok + probed.limited <= RATE_LIMIT_MAX) ctx.notes.push(`rate limit not measured: the probe got ${probed.ok} × 200, ${probed.limited} × 429${others}`)
    else ctx.notes.push(`${held ? '' : 'NOT '}${line}`)
  }
  if (!scenario.zeroFailures && forced.length > 0) {
    ctx.notes.push(`forced re-logins: ${forced.length} (sessions lost: ${new Set(forced.map((x) => x.user)).size} users)`)
  }
  if (writes.committedUnacked > 0) ctx.notes.push(`${writes.committedUnacked} writes answered with an error were committed anyway`)
  if (excused.length > 0) ctx.notes.push(`in flight on the killed instance: ${describe(excused)}`)
  const resent = samples.filter((s) => s.resent !== undefined)
  if (resent.length > 0) ctx.notes.push(`resent by the client (a reused connection to nginx closed before any answer, as browsers resend): ${resent.length}, ${describe(resent)}`)
  longestCalmMs = Math.max(longestCalmMs, ...samples.filter((s) => s.t1 < ctx.faultAt).map((s) => s.t1 - s.t0))
  ctx.calmMs = longestCalmMs
  checks.push(...scenario.judge(f, samples, ctx))
  f.checks = checks
  return f
}

function table (figures: Figures[]): string {
  const rows = figures.map((f) => {
    const failed = f.failed.size === 0 ? '0' : [...f.failed].map(([k, n]) => `${n} × ${k}`).join(', ')
    const probe = f.probe === null
      ? '-'
      : f.probe.ok + f.probe.limited <= RATE_LIMIT_MAX
        ? `not measured (${f.probe.ok} ok, ${f.probe.limited} × 429, ${Object.entries(f.probe.other).map(([k, n]) => `${n} × ${k}`).join(', ')})`
        : `${rateLimitHeld(f.probe) ? 'yes' : 'NO'} (${f.probe.ok} ok, ${f.probe.limited} × 429)`
    const verdict = f.checks.every((c) => c.ok) ? 'pass' : '**FAIL**'
    return `| ${f.id} | ${f.name} | ${f.requests} | ${failed}${f.excused ? ` (${f.excused} in flight on the killed one)` : ''} | ${f.acked} / ${f.lost} / ${f.duplicated} | ${Math.round(f.longestMs)} ms | ${f.recoveryS.toFixed(1)} s | ${f.forcedLogins} | ${probe} | ${f.crashes} | ${verdict} |`
  })
  return [
    '| # | scenario | requests | failed (count × status) | writes acked / lost / duplicated | longest request | recovery | forced re-logins | shared rate limit held | crashes | verdict |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows
  ].join('\n')
}

function details (figures: Figures[]): string {
  return figures.map((f) => [
    `### ${f.id}. ${f.name}`,
    '',
    ...f.checks.map((c) => `- ${c.ok ? '✓' : '✗'} ${c.what}`),
    ...f.notes.map((n) => `- ${n}`),
    `- longest request: ${f.longest}`,
    ''
  ].join('\n')).join('\n')
}

async function main () {
  const started = Date.now()
  const loadStart = loadavg().map((x) => x.toFixed(1)).join(' / ')
  const t = new Teardowns()
  const watchdog = setTimeout(() => {
    console.error(`topology: still running after ${WATCHDOG_MS / 60_000} minutes, giving up`)
    // the fixtures' exit handlers stop every server and remove every directory
    process.kill(process.pid, 'SIGTERM')
  }, WATCHDOG_MS)
  watchdog.unref()
  let failed = true
  try {
    // what the app's configuration can express decides the Redis topology and TRUST_PROXY
    const canCluster = accepts({ REDIS_URL: 'redis+cluster://127.0.0.1:1,127.0.0.1:2' })
    const trustProxy = accepts({ TRUST_PROXY: '127.0.0.1' }) ? '127.0.0.1' : 'true'
    console.log(`topology: starting PostgreSQL (primary + 2 replicas), ${canCluster ? 'Redis Cluster (3 + 3)' : 'one redis-server (REDIS_URL cannot name a cluster in this build: scenario 3 does not run)'}, 3 instances, nginx`)
    const stack = await startStack(t, {
      cluster: canCluster,
      trustProxy,
      env: {
        RATE_LIMIT_MAX: String(RATE_LIMIT_MAX),
        RATE_LIMIT_WINDOW_MS: String(RATE_LIMIT_WINDOW_MS),
        DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
        // every simulated user signs up from the load generator's one address,
        // eight at a time: the per-address signup counter and the hashing bound
        // are for attackers, not for this load (test/login-abuse.test.ts has them)
        SIGNUP_ADDRESS_MAX: '100000',
        PASSWORD_HASH_CONCURRENCY: '16',
        // fast fake providers: a request's own time stays far below the bounds the scenarios check
        MARKET_LATENCY_MS: '20',
        MARKET_FAILURE_RATE: '0',
        INSIGHTS_COST_MS: '50'
      }
    })
    t.teardown(() => saveLogs(stack.dir))
    console.log(`topology: stack up in ${((Date.now() - started) / 1000).toFixed(1)} s; ${stack.instances.map((i) => i.address).join(', ')} behind ${stack.nginx.url}`)

    const runId = Date.now().toString(36)
    const client = (address: string) => {
      const c = new HttpClient(stack.nginx.url, stack.nginx.certificate, address)
      t.teardown(() => c.close())
      return c
    }
    const users = Array.from({ length: USERS }, (_, i) => new User(i, `user${i}-${runId}@topology.example`, client(`127.0.1.${i + 1}`)))
    const probes = scenarios.map((s) => new User(1000 + s.id, `probe${s.id}-${runId}@topology.example`, client(`127.0.2.${s.id}`)))
    for (let i = 0; i < users.length + probes.length; i += 8) {
      await Promise.all([...users, ...probes].slice(i, i + 8).map((u) => u.signup()))
    }
    const edge = await edgeCache(users[0]!.client)
    const signupLine = `read-your-writes after signup: ${staleAfterSignup.count} of ${users.length + probes.length} signups did not see their own new account on the next read (GET /api/accounts); ${setupSessionsLost.count} sessions were unknown on the request after signup (the user logged in again)`
    console.log(`topology: ${USERS} users logged in; ${edge.line}; ${signupLine}`)

    const load = new Load(users, RATE)
    const figures: Figures[] = []
    const selected = (QUICK ? scenarios.slice(0, 2) : scenarios).filter((s) => s.id !== 3 || stack.redis !== null)
    for (const scenario of selected) {
      for (let i = 0; i < users.length; i += 16) await Promise.all(users.slice(i, i + 16).map((u) => u.resync()))
      const t0 = Date.now()
      const f = await runScenario(stack, load, scenario, probes[scenario.id - 1]!)
      figures.push(f)
      console.log(`topology: ${scenario.id}. ${scenario.name}: ${f.checks.every((c) => c.ok) ? 'pass' : 'FAIL'} (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
    }
    const seconds = (Date.now() - started) / 1000
    const ok = figures.every((f) => f.checks.every((c) => c.ok)) && edge.ok && staleAfterSignup.count === 0 && load.skipped === 0 && (QUICK || figures.length === scenarios.length)
    const report = [
      '# Topology test: the last run',
      '',
      `Generated by \`pnpm test:topology\` on ${new Date().toISOString()} (${seconds.toFixed(0)} s in all). ` +
      `nginx (deploy/nginx) in front of 3 instances of the production build (\`node --enable-source-maps dist/server.js\`, NODE_ENV=production, DRAIN_DELAY_MS=${DRAIN_DELAY_MS}), ` +
      `PostgreSQL primary + 2 streaming replicas, ${canCluster ? 'Redis Cluster of 3 masters + 3 replicas' : 'one redis-server (this build cannot name a cluster: scenario 3 did not run)'}; all on loopback. ` +
      `Load: ${USERS} users logged in at the start, ${RATE} requests/s in total (open model), 25 % POST /api/transactions with unique descriptions; ` +
      `per-user limit ${RATE_LIMIT_MAX} per ${RATE_LIMIT_WINDOW_MS / 1000} s, probed with ${PROBE_REQUESTS} requests from one client at ${PROBE_PER_SECOND}/s. ` +
      `Redis command timeout ${DEFAULT_COMMAND_TIMEOUT_MS} ms, pool acquire timeout ${DEFAULT_ACQUIRE_TIMEOUT_MS} ms. ` +
      `Load average of the machine (2 cores, shared): ${loadStart} at the start, ${loadavg().map((x) => x.toFixed(1)).join(' / ')} at the end (1 / 5 / 15 min).`,
      '',
      table(figures),
      '',
      `Recovery: from the disruption to the end of the last failed request (0.0: nothing failed). Longest request: measured at the client, through nginx. ${edge.line}. ` +
      `Load generator: ${load.skipped} arrivals skipped, at most ${load.maxInFlightSeen} requests in flight. Setup: ${signupLine}.`,
      '',
      details(figures)
    ].join('\n')
    console.log('\n' + table(figures) + '\n\n' + details(figures))
    writeFileSync(join(HERE, QUICK ? 'RESULTS.quick.md' : 'RESULTS.md'), report + '\n')
    console.log(`topology: ${ok ? 'all acceptance lines hold' : 'ACCEPTANCE FAILED'} (${seconds.toFixed(0)} s)`)
    failed = !ok
  } catch (err) {
    console.error('topology: error:', err)
  } finally {
    await t.run()
    clearTimeout(watchdog)
  }
  process.exitCode = failed ? 1 : 0
}

function accepts (env: Record<string, string>): boolean {
  try {
    loadConfig(env)
    return true
  } catch {
    return false
  }
}

/** /assets/* through the edge cache: the second answer is nginx's copy, with the app's immutable caching. */
async function edgeCache (client: HttpClient): Promise<{ ok: boolean, line: string }> {
  await client.send('GET', '/assets/app.css?v=topology')
  const r = await client.send('GET', '/assets/app.css?v=topology')
  const cacheControl = String(r.headers['cache-control'])
  const ok = r.status === 200 && r.headers['x-cache-status'] === 'HIT' && cacheControl.includes('immutable')
  return { ok, line: `edge cache: /assets/app.css ${r.status}, X-Cache-Status ${r.headers['x-cache-status']}, Cache-Control "${cacheControl}"${ok ? '' : ' (FAIL)'}` }
}

/** The instances' and nginx's logs of the last run, for whoever reads a failure (git-ignored). */
function saveLogs (dir: string) {
  const target = join(HERE, '.last-run')
  rmSync(target, { recursive: true, force: true })
  mkdirSync(target, { recursive: true })
  cpSync(dir, target, {
    recursive: true,
    filter: (src) => !/(_temp|_cache|tls)$/.test(src) && !src.includes('/tls/')
  })
}

await main()
