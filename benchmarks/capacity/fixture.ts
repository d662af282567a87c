/**
 * What the capacity run measures on: a private PostgreSQL (pg_stat_statements
 * preloaded, fsync on: every statement and every CPU second of every backend
 * is this run's) and a private Redis (INFO commandstats and MEMORY USAGE see
 * only this run's keys), both from @headroom/testing and removed at the end;
 * the example's schema and seeded users; snapshots of what each shared
 * resource has spent.
 */
import { randomBytes, scryptSync } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { startPostgres, startRedis, type PrivatePostgres, type PrivateRedis } from '@headroom/testing'
import { Redis } from 'ioredis'
import pg from 'pg'
import { migrate } from '../../examples/finance-api/src/migrate.js'
import { SEED_PASSWORD, seed } from '../../examples/finance-api/src/seed.js'

/**
 * The seeded users' password hash, at scrypt N=2^10 instead of the example's
 * 2^15: the virtual users log in before the measurement (no login is in the
 * mix), and 2,000 logins at the real cost take minutes of the app's one core.
 * The app verifies with the parameters the hash carries (passwords.ts).
 */
export function cheapSeedHash (): string {
  const salt = randomBytes(16)
  const N = 1 << 10
  const key = scryptSync(SEED_PASSWORD.normalize('NFKC'), salt, 64, { N, r: 8, p: 1 })
  return ['scrypt', N, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$')
}

export const DATABASE = 'capacity'
export const KEY_PREFIX = 'capacity:'

export interface Fixture {
  pg: PrivatePostgres
  redis: PrivateRedis
  dbUrl: string
  firstUserId: number
  users: number
  /** heavy users (thousands of transactions each): their summaries make the pool claim's load database-bound */
  heavy: { first: number, count: number }
  /** one connection to the `postgres` database for the run's own queries (its backend is not the app's) */
  probe: pg.Client
  /** the app's summary statement as it ran (pg_stat_activity), once a sample has caught it */
  summarySql?: string
  close (): Promise<void>
}

export async function setup (users: number, heavy: { users: number, transactionsPerUser: number }, log: (s: string) => void): Promise<Fixture> {
  const cleanups: Array<() => unknown> = []
  const t = { teardown: (fn: () => unknown) => { cleanups.push(fn) } }
  const close = async () => { for (const fn of cleanups.reverse()) await fn() }
  try {
    const server = await startPostgres(t, {
      settings: {
        shared_preload_libraries: "'pg_stat_statements'",
        'pg_stat_statements.track': "'all'",
        fsync: 'on',
        full_page_writes: 'on',
        shared_buffers: "'128MB'",
        max_connections: 200,
        track_activity_query_size: 4096
      }
    })
    const redis = await startRedis(t)
    await server.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
    await server.query(`CREATE DATABASE ${DATABASE}`)
    const dbUrl = server.url.replace(/\/postgres$/, `/${DATABASE}`)
    await migrate(dbUrl)
    const seeded = await seed(dbUrl, { users })
    const heavySeeded = await seed(dbUrl, { users: heavy.users, transactionsPerUser: heavy.transactionsPerUser, randomSeed: 7 })
    // nothing left for autovacuum to do while the run measures PostgreSQL's CPU
    const admin = new pg.Client({ connectionString: dbUrl })
    await admin.connect()
    await admin.query('UPDATE users SET password_hash = $1', [cheapSeedHash()])
    await admin.query('VACUUM ANALYZE')
    await admin.end()
    const probe = new pg.Client({ connectionString: server.url })
    await probe.connect()
    cleanups.push(() => probe.end())
    log(`  private PostgreSQL :${server.port} and Redis :${redis.port}; seeded ${seeded.users} users, ${seeded.transactions} transactions ` +
      `and ${heavySeeded.users} heavy users, ${heavySeeded.transactions} transactions in ${((seeded.ms + heavySeeded.ms) / 1000).toFixed(1)} s`)
    return { pg: server, redis, dbUrl, firstUserId: seeded.firstUserId, users: seeded.users, heavy: { first: heavySeeded.firstUserId, count: heavySeeded.users }, probe, close }
  } catch (err) {
    await close()
    throw err
  }
}

const TICK = 100 // USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s on Linux

function statTimes (pid: number): { own: number, children: number, ppid: number } | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ')
    // after the comm: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17), here 0-based from state
    return { ppid: Number(f[1]), own: (Number(f[11]) + Number(f[12])) / TICK, children: (Number(f[13]) + Number(f[14])) / TICK }
  } catch {
    return undefined
  }
}

/** CPU seconds of one process. */
export function processCpuSeconds (pid: number): number {
  return statTimes(pid)?.own ?? Number.NaN
}

/** CPU seconds of a PostgreSQL server: the postmaster, its live children, and the children it has reaped. */
export function postgresCpuSeconds (postmaster: number): number {
  const root = statTimes(postmaster)
  if (!root) return Number.NaN
  let total = root.own + root.children
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = statTimes(Number(name))
    if (s && s.ppid === postmaster) total += s.own
  }
  return total
}

/** Statements the app's database has run (pg_stat_statements, every nesting level). */
export async function statements (fx: Fixture): Promise<number> {
  const { rows } = await fx.probe.query<{ n: string | null }>(
    'SELECT sum(calls)::text AS n FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)', [DATABASE])
  return Number(rows[0]?.n ?? 0)
}

export interface RedisSnapshot { commands: Record<string, number>, cpuS: number }

export async function redisSnapshot (url: string): Promise<RedisSnapshot> {
  const c = new Redis(url, { lazyConnect: true })
  await c.connect()
  try {
    const commands: Record<string, number> = {}
    for (const m of (await c.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands[m[1]!] = Number(m[2])
    const cpu = await c.info('cpu')
    const num = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? Number.NaN)
    return { commands, cpuS: num('used_cpu_user') + num('used_cpu_sys') }
  } finally {
    c.disconnect()
  }
}

/** Commands by type between two snapshots, without the ones the snapshots themselves sent. */
export function commandDelta (a: RedisSnapshot, b: RedisSnapshot): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(b.commands)) {
    const d = v - (a.commands[k] ?? 0) - (k === 'info' ? 2 : 0)
    if (d > 0) out[k] = d
  }
  return out
}

/** Mean MEMORY USAGE of up to `sample` keys matching each pattern (bytes), and how many keys matched. */
export async function memoryByPattern (url: string, patterns: Record<string, string>, sample = 200): Promise<Record<string, { bytes: number, keys: number }>> {
  const c = new Redis(url, { lazyConnect: true })
  await c.connect()
  try {
    const out: Record<string, { bytes: number, keys: number }> = {}
    for (const [name, pattern] of Object.entries(patterns)) {
      const keys: string[] = []
      let cursor = '0'
      do {
        const [next, batch] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        cursor = next
        keys.push(...batch)
      } while (cursor !== '0')
      let bytes = 0
      const picked = keys.slice(0, sample)
      for (const k of picked) bytes += Number(await c.memory('USAGE', k, 'SAMPLES', '0') ?? 0)
      out[name] = { bytes: picked.length > 0 ? bytes / picked.length : Number.NaN, keys: keys.length }
    }
    return out
  } finally {
    c.disconnect()
  }
}

/**
 * Connections of the app's database by state, right now, and the text of a
 * running summary statement if one is running (pg_stat_statements keeps it
 * normalised, constants replaced; pg_stat_activity has it as sent).
 */
export async function connectionsInUse (fx: Fixture): Promise<{ active: number, total: number, pids: number[], summarySql: string | null }> {
  const { rows } = await fx.probe.query<{ active: string, total: string, pids: number[] | null, summary: string | null }>(
    `SELECT count(*) FILTER (WHERE state = 'active')::text AS active, count(*)::text AS total, array_agg(pid) AS pids,
            max(query) FILTER (WHERE query LIKE '%json_agg(acc)%') AS summary
     FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`, [DATABASE])
  return { active: Number(rows[0]!.active), total: Number(rows[0]!.total), pids: rows[0]!.pids ?? [], summarySql: rows[0]!.summary }
}
