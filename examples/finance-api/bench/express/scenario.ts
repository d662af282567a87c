import { randomBytes } from 'node:crypto'
import { defineScenario, type BenchRequest, type Check } from '@headroom/benchmarks'
import pg from 'pg'
import { migrate } from '../../src/migrate.js'
import { serverEnv } from '../load.js'
import { SEED_PASSWORD, seed, seedEmail } from '../../src/seed.js'

/** forked by the harness by URL; the type exports have them typechecked with the scenarios */
const expressServer = new URL('./server.ts', import.meta.url)
const headroomServer = new URL('./headroom-server.ts', import.meta.url)
export type { default as ExpressServer } from './server.js'
export type { default as HeadroomServer } from './headroom-server.js'

/** seeded users, as in the hand measurement */
const USERS = 200
/** of them logged in per server process (autocannon cycles through their requests) */
const VIRTUAL_USERS = 8
const https = { 'x-forwarded-proto': 'https' }

async function admin (url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try { await c.query(sql) } finally { await c.end() }
}

/** Same request to both servers: their logins take the same JSON and set a session cookie. */
async function login (base: string, email: string): Promise<string> {
  const res = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { ...https, 'content-type': 'application/json' }, body: JSON.stringify({ email, password: SEED_PASSWORD }) })
  if (res.status !== 200) throw new Error(`login of ${email} at ${base} answered ${res.status}: ${await res.text()}`)
  return res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')
}

async function queriesSoFar (base: string): Promise<number> {
  return ((await (await fetch(`${base}/__queries`)).json()) as { queries: number }).queries
}

/** Database queries per request, once per variant: a cold pass over the requests, then a warm one. Sequential, before the timed part. */
async function probe (base: string, list: BenchRequest[]): Promise<{ cold: number, warm: number }> {
  const pass = async () => {
    const before = await queriesSoFar(base)
    for (const r of list) {
      const res = await fetch(base + r.path, { headers: r.headers })
      if (res.status !== 200) throw new Error(`${r.path} at ${base} answered ${res.status}: ${await res.text()}`)
    }
    return (await queriesSoFar(base) - before) / list.length
  }
  const cold = await pass()
  return { cold, warm: await pass() }
}

/**
 * The example against the same reads written with Express (server.ts), on one
 * PostgreSQL database and Redis seeded for this run: `path` as logged-in users,
 * the example with its cache as shipped and with every cache wrap() bypassed.
 * Prints database queries per request for each (cold: first read of each user;
 * warm: the second, which is what the timed part mostly sees).
 */
export function expressComparison (opts: { name: string, what: string, path: string, checks: Check[] }) {
  const perRequest = new Map<string, { cold: number, warm: number }>()
  let firstUserId = 1
  const requests = (variant: string) => async ({ url }: { url: string }): Promise<BenchRequest[]> => {
    const step = Math.floor(USERS / VIRTUAL_USERS)
    const cookies = await Promise.all(Array.from({ length: VIRTUAL_USERS }, (_, i) => login(url, seedEmail(firstUserId + i * step))))
    const list = cookies.map((cookie): BenchRequest => ({ path: opts.path, headers: { ...https, cookie } }))
    if (!perRequest.has(variant)) perRequest.set(variant, await probe(url, list))
    return list
  }
  return defineScenario({
    kind: 'http',
    name: opts.name,
    description: `${opts.what} (GET ${opts.path}) as logged-in users, ${USERS} seeded: the example vs Express (express-session + connect-redis, express-rate-limit + rate-limit-redis, helmet, pg Pool, no cache), same PostgreSQL, Redis and data.`,
    baseline: 'express',
    variants: [
      { name: 'express', server: expressServer, requests: requests('express') },
      { name: 'headroom', server: headroomServer, requests: requests('headroom') },
      { name: 'headroom, cache bypassed', server: headroomServer, env: { CAPACITY_CACHE: 'off' }, requests: requests('headroom, cache bypassed') }
    ],
    connections: 32,
    async setup () {
      const baseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
      const database = `${opts.name.replaceAll('-', '_')}_${process.pid}_${Date.now().toString(36)}`
      const dbUrl = new URL(baseUrl)
      dbUrl.pathname = `/${database}`
      await admin(baseUrl, `CREATE DATABASE "${database}" TEMPLATE template0`)
      await migrate(dbUrl.toString())
      firstUserId = (await seed(dbUrl.toString(), { users: USERS })).firstUserId
      return {
        // the Express server reads the same variables (RATE_LIMIT_MAX: both limit every request in Redis, never reaching the limit)
        env: serverEnv(dbUrl.toString(), process.env.REDIS_URL || 'redis://127.0.0.1:6379', `${opts.name}-${randomBytes(4).toString('hex')}:`),
        async teardown () {
          console.log('  database queries per request (cold = each user\'s first read, warm = second):')
          for (const [variant, q] of perRequest) console.log(`    ${variant.padEnd(26)} cold ${q.cold.toFixed(2)}  warm ${q.warm.toFixed(2)}`)
          await admin(baseUrl, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)
        }
      }
    },
    checks: opts.checks
  })
}
