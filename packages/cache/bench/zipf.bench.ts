import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import pg from 'pg'
import { defineScenario, type CustomRow } from '@headroom/benchmarks'
import headroomCache, { type Namespace } from '../src/index.js'
import { Coherence, deal, idealReads, zipfTrace } from './trace.js'

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

const KEYS = 100_000
const WRITE_SHARE = 0.05
/** virtual arrival rate of the trace: requests per second */
const RATE = 2000
/** the multi-instance shape: instances sharing one Redis (L2 and the bus), each with this many requests in flight */
const INSTANCES = 3
const IN_FLIGHT = 8
/** each instance's own pg pool */
const POOL_MAX = 4
/**
 * The multi-instance check: headroom saves at least this share of what the
 * ideal cache saves. Measured: see the cache README (Benchmarks); the bound
 * sits below the lowest run with room for a busier machine.
 */
const MULTI_OF_IDEAL = 0.9
/**
 * Across instances the guarantee is bounded staleness: another instance's L1
 * learns of a delete over the bus (17–85 ms measured at load 8–14). A stale
 * read that began longer than this after the write completed is a failure.
 */
const BUS_DELAY_BOUND_MS = 1000
/** the single-instance, in-order replay (secondary): nothing concurrent, so only the L1 bound separates it from the ideal */
const SINGLE_OF_IDEAL = 0.97

interface Shape { instances: number, inFlight: number }
const MULTI: Shape = { instances: INSTANCES, inFlight: IN_FLIGHT }
const SINGLE: Shape = { instances: 1, inFlight: 1 }

interface TraceResult {
  reads: number
  writes: number
  dbReads: number
  /** database reads of a key that started while another read of it was in flight (another instance's miss) */
  dbOverlaps: number
  violations: number
  /** the largest number of versions a violating read was behind */
  worstVersions: number
  /** the longest a write had been complete (real ms) when a read that still missed it began */
  worstSince: number
  errors: number
  ideal: number
  saved: number
  idealSaved: number
  ofIdeal: number
  seconds: number
}

/** One instance: its own Fastify app, Redis client (and so bus connection) and pg pool, over the shared table and prefix. */
async function instance (table: string, prefix: string, ttlMs: number, now: () => number, loads: { start (id: number): void, end (id: number): void }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: POOL_MAX })
  const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  app.addHook('onClose', async () => {
    redis.disconnect()
    await pool.end()
  })
  await new Promise((resolve) => redis.once('ready', resolve))
  await app.register(headroomCache, { redis, prefix, now, namespaces: { accounts: { ttl: ttlMs } } })
  app.get<{ Params: { id: string } }>('/accounts/:id', async (request) => {
    const id = Number(request.params.id)
    const accounts = app.cache.ns('accounts') as Namespace
    return accounts.wrap(`acct:${id}`, async () => {
      loads.start(id)
      try {
        const res = await pool.query<{ version: number, balance: string }>(`SELECT version, balance FROM ${table} WHERE id = $1`, [id])
        return res.rows[0]!
      } finally {
        loads.end(id)
      }
    })
  })
  // a write as the example does it: update the row, then invalidate through this instance (the others learn of it on the bus)
  app.post<{ Params: { id: string } }>('/accounts/:id/deposit', async (request) => {
    const id = Number(request.params.id)
    const res = await pool.query<{ version: number }>(`UPDATE ${table} SET version = version + 1, balance = balance + 1 WHERE id = $1 RETURNING version`, [id])
    await (app.cache.ns('accounts') as Namespace).delete(`acct:${id}`)
    return { version: res.rows[0]!.version }
  })
  await app.ready()
  return app
}

/**
 * One trace through `shape.instances` instances over a table and key prefix
 * of its own, in virtual time: request i starts at i / RATE seconds, and
 * every instance's cache clock reads the time of the latest request started.
 */
async function runTrace (ctx: { log (line: string): void }, setup: pg.Pool, ttlMs: number, length: number, shape: Shape): Promise<TraceResult> {
  const table = `cache_bench_${process.pid}_${Date.now()}`
  const prefix = `bench-zipf-${process.pid}-${Date.now()}:`
  const start = Date.UTC(2026, 0, 1)
  let virtualNow = start
  const apps: FastifyInstance[] = []
  const cleanup = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  try {
    await setup.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, version integer NOT NULL, balance numeric NOT NULL)`)
    await setup.query(`INSERT INTO ${table} SELECT g, 0, g * 1.5 FROM generate_series(1, ${KEYS}) g`)
    let dbReads = 0
    let dbOverlaps = 0
    const loading = new Map<number, number>()
    const loads = {
      start (id: number) {
        dbReads++
        const n = loading.get(id) ?? 0
        if (n > 0) dbOverlaps++
        loading.set(id, n + 1)
      },
      end (id: number) {
        const n = loading.get(id)! - 1
        if (n === 0) loading.delete(id)
        else loading.set(id, n)
      }
    }
    for (let i = 0; i < shape.instances; i++) apps.push(await instance(table, prefix, ttlMs, () => virtualNow, loads))

    const t = zipfTrace(length, 42, KEYS, WRITE_SHARE)
    const coherence = new Coherence()
    let reads = 0
    let writes = 0
    let errors = 0
    const started = performance.now()
    await deal(length, shape.instances, shape.inFlight, async (i, n) => {
      const id = t.keys[i]!
      const app = apps[n]!
      if (t.writes[i]) {
        writes++
        const res = await app.inject({ method: 'POST', url: `/accounts/${id}/deposit` })
        if (res.statusCode !== 200) { errors++; return }
        coherence.wrote(id, (res.json() as { version: number }).version, performance.now())
        return
      }
      reads++
      const read = coherence.begin(id, performance.now())
      const res = await app.inject({ method: 'GET', url: `/accounts/${id}` })
      if (res.statusCode !== 200) { errors++; return }
      coherence.end(read, (res.json() as { version: number }).version)
      if (i % 100_000 === 0 && i > 0) ctx.log(`  TTL ${ttlMs / 1000} s, ${shape.instances} instance(s): ${i} requests, ${dbReads} database reads`)
    }, (i) => { virtualNow = start + (i * 1000) / RATE })
    const seconds = (performance.now() - started) / 1000
    const ideal = idealReads(t, ttlMs, RATE)
    return {
      reads,
      writes,
      dbReads,
      dbOverlaps,
      violations: coherence.violations,
      worstVersions: coherence.worstVersions,
      worstSince: coherence.worstSince,
      errors,
      ideal,
      saved: 1 - dbReads / reads,
      idealSaved: 1 - ideal / reads,
      ofIdeal: (reads - dbReads) / (reads - ideal),
      seconds
    }
  } finally {
    for (const app of apps) await app.close()
    await setup.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {})
    const keys = await cleanup.keys(`${prefix}*`).catch(() => [] as string[])
    for (let i = 0; i < keys.length; i += 1000) await cleanup.unlink(...keys.slice(i, i + 1000)).catch(() => {})
    cleanup.disconnect()
  }
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`
const count = (x: number) => x.toLocaleString('en')

function violations (r: TraceResult): string {
  if (r.violations === 0) return '0 violations'
  return `${count(r.violations)} violations (${pct(r.violations / r.reads)} of reads; up to ${r.worstVersions} versions behind, ` +
    `beginning up to ${r.worstSince.toFixed(0)} ms after the write they missed had completed)`
}

function row (ttl: string, cache: string, r: TraceResult): CustomRow {
  return {
    ttl,
    cache,
    'database reads': r.dbReads,
    'reads saved': pct(r.saved),
    'of ideal saving': pct(r.ofIdeal),
    'reads over ideal': `+${pct(r.dbReads / r.ideal - 1)}`,
    'coherence violations': r.violations
  }
}

/**
 * The seed's claim ("80% reduction in database queries") on a workload we
 * can reproduce: a Zipf(1.0) request trace over 100,000 account rows of a
 * real PostgreSQL table, 5% of requests being writes that update the row and
 * invalidate its entry. The trace runs in virtual time (2,000 requests/s;
 * the caches' clock is injected) so TTLs expire as they would in production.
 *
 * The headline: three instances (Fastify apps with their own Redis client,
 * bus connection and pg pool) sharing one Redis, the requests dealt round
 * robin, eight in flight on each: misses of one key on several instances,
 * invalidations crossing instances over the bus, and reads racing writes,
 * so it can fall short of the ideal cache. Secondary: the same trace
 * replayed in order through one instance (nothing concurrent), the figure
 * quoted before, which equals the ideal cache nearly by construction.
 */
export default defineScenario({
  kind: 'custom',
  name: 'cache-zipf',
  description: `Database reads saved on a Zipf(1.0) trace over 100,000 PostgreSQL rows with 5% invalidating writes: ${INSTANCES} instances sharing Redis, ${IN_FLIGHT} requests in flight on each (headline), and 1 instance in order (secondary), vs no cache and an ideal cache`,
  run: async (ctx) => {
    const setup = new pg.Pool({ connectionString: DATABASE_URL, max: 1 })
    try {
      const rows: CustomRow[] = []
      const checks: Array<{ name: string, pass: boolean, detail: string }> = []
      const notes: string[] = []
      // the 60 s TTL (the example's summary TTL) needs many TTLs (120,000 requests each) for entries to expire and be read again
      const runs = ctx.quick
        ? [{ ttlMs: 60_000, multi: 40_000, single: 0 }]
        : [{ ttlMs: 60_000, multi: 600_000, single: 600_000 }, { ttlMs: 300_000, multi: 1_000_000, single: 1_000_000 }]
      for (const { ttlMs, multi: multiLength, single: singleLength } of runs) {
        const ttl = `TTL ${ttlMs / 1000} s`
        const m = await runTrace(ctx, setup, ttlMs, multiLength, MULTI)
        rows.push(
          { ttl, cache: 'none', 'database reads': m.reads, 'reads saved': '0.00%', 'of ideal saving': '-', 'reads over ideal': '-', 'coherence violations': '-' },
          { ttl, cache: 'ideal (unbounded, shared, coherent, same TTL)', 'database reads': m.ideal, 'reads saved': pct(m.idealSaved), 'of ideal saving': '100.00%', 'reads over ideal': '0', 'coherence violations': 0 },
          row(ttl, `headroom, ${INSTANCES} instances × ${IN_FLIGHT} in flight`, m)
        )
        checks.push(
          { name: `${ttl}, ${INSTANCES} instances: headroom saves >= ${MULTI_OF_IDEAL * 100}% of what the ideal cache saves`, pass: m.ofIdeal >= MULTI_OF_IDEAL, detail: pct(m.ofIdeal) },
          // stale reads within the bus delay are the documented cost of L1 across instances: reported, not refused
          { name: `${ttl}, ${INSTANCES} instances: no read older than a write completed more than ${BUS_DELAY_BOUND_MS} ms before it began (the bus delay bound)`, pass: m.violations === 0 || m.worstSince <= BUS_DELAY_BOUND_MS, detail: violations(m) },
          { name: `${ttl}, ${INSTANCES} instances: every request answered 200`, pass: m.errors === 0, detail: `${m.errors} errors` }
        )
        if (ttlMs === 300_000) checks.push({ name: `${ttl}, ${INSTANCES} instances: headroom saves >= 80% of database reads (the seed's claim)`, pass: m.saved >= 0.8, detail: pct(m.saved) })
        notes.push(`${ttl}, ${INSTANCES} instances: ${count(multiLength)} requests (${count(m.reads)} reads, ${count(m.writes)} invalidating writes) in ${m.seconds.toFixed(1)} s of wall time; ` +
          `virtual time ${(multiLength / RATE / 60).toFixed(1)} min at ${RATE} requests/s (${(multiLength / RATE / (ttlMs / 1000)).toFixed(1)} TTLs); ` +
          `${count(m.dbReads - m.ideal)} database reads more than the ideal cache, ${count(m.dbOverlaps)} of them started while another instance was reading the same row.`)
        if (singleLength > 0) {
          const s = await runTrace(ctx, setup, ttlMs, singleLength, SINGLE)
          if (s.ideal !== m.ideal) throw new Error('the single-instance run replayed a different trace')
          rows.push(row(ttl, 'headroom, 1 instance, in order (secondary)', s))
          checks.push(
            { name: `${ttl}, 1 instance in order: headroom saves >= ${SINGLE_OF_IDEAL * 100}% of what the ideal cache saves`, pass: s.ofIdeal >= SINGLE_OF_IDEAL, detail: pct(s.ofIdeal) },
            { name: `${ttl}, 1 instance in order: no read older than a write completed before it began`, pass: s.violations === 0, detail: violations(s) }
          )
          notes.push(`${ttl}, 1 instance in order: ${s.seconds.toFixed(1)} s of wall time; reads saved ${pct(s.saved)}, ideal ${pct(s.idealSaved)}.`)
        }
      }
      notes.push('Each instance: L1 of at most 50,000 entries for at most 30 s (virtual), its own Redis client and bus connection, a pg pool of 4; L1 misses go to the shared Redis L2, not the database. Writes update the row and then delete the entry through the instance that served them.',
        'The 60 s TTL is the example\'s summary TTL: with it the seed\'s "80% fewer queries" holds only as far as the ideal cache\'s saving does on this trace (reported, not required).',
        ctx.quick
          ? 'Quick run: the 60 s TTL only, 40,000 requests (a third of a TTL, so more of the reads are first reads), 3 instances only; the full run adds the 300 s TTL (1,000,000 requests) and the single-instance in-order replays (600,000 and 1,000,000 requests).'
          : 'Full run: 600,000 requests at the 60 s TTL, 1,000,000 at 300 s, each through 3 instances and through 1 instance in order.')
      return { rows, checks, notes }
    } finally {
      await setup.end()
    }
  }
})
