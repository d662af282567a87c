import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { defineScenario, type BenchRequest } from '@headroom/benchmarks'
import pg from 'pg'
import { login, serverEnv } from 'finance-api/bench/load'
import { migrate } from 'finance-api/migrate'
import { seed, seedEmail } from 'finance-api/seed'

/** forked by the harness by URL; the type export below has it typechecked with this file */
const server = new URL(import.meta.resolve('finance-api/bench/traced-server'))
export type { default as TracedServer } from 'finance-api/bench/traced-server'
const USERS = 200
/** virtual users per server process, logged in once it listens */
const VIRTUAL_USERS = 8
/** the example's dashboard mix (examples/finance-api/bench/load.ts), in 20 slots */
const MIX = ['summary', 'transactions', 'summary', 'quotes', 'static', 'transactions', 'summary', 'insights', 'static', 'transactions',
  'summary', 'quotes', 'write', 'transactions', 'summary', 'static', 'insights', 'transactions', 'quotes', 'summary'] as const
const STATICS = ['/', '/assets/app.js', '/assets/app.css', '/assets/favicon.svg']

async function admin (url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try { await c.query(sql) } finally { await c.end() }
}

let firstUserId = 1

/** The mix, each slot as one of the logged-in users (autocannon cycles through the list). */
async function mix ({ url }: { url: string }): Promise<BenchRequest[]> {
  const users = await Promise.all(Array.from({ length: VIRTUAL_USERS }, (_, i) => login(url, seedEmail(firstUserId + i * Math.floor(USERS / VIRTUAL_USERS)))))
  let s = 0
  return users.flatMap((u) => MIX.map((kind): BenchRequest => {
    const headers = { 'x-forwarded-proto': 'https', cookie: u.cookie }
    switch (kind) {
      case 'summary': return { path: '/api/summary', headers }
      case 'transactions': return { path: '/api/transactions?limit=20', headers }
      case 'quotes': return { path: '/api/quotes?symbols=AAPL,MSFT,VTI', headers }
      case 'insights': return { path: '/api/insights', headers }
      case 'static': return { path: STATICS[s++ % STATICS.length]!, headers: { 'x-forwarded-proto': 'https' } }
      default: return {
        method: 'POST',
        path: '/api/transactions',
        headers: { ...headers, 'content-type': 'application/json', 'x-csrf-token': u.csrfToken },
        body: JSON.stringify({ accountId: u.accountId, amountCents: -1250, category: 'groceries', description: 'load test' })
      }
    }
  }))
}

let receiver: { url: string, requests: number, bytes: number } | undefined

/** The OTLP/HTTP receiver: accepts every export and discards it (a collector's cost is not the app's). */
async function startReceiver (): Promise<{ server: Server, url: string, requests: number, bytes: number }> {
  const state = { server: undefined as unknown as Server, url: '', requests: 0, bytes: 0 }
  state.server = createServer((req, res) => {
    state.requests++
    req.on('data', (d: Buffer) => { state.bytes += d.length })
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end())
  })
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}`
  return state
}

const traced = (sampler: string, arg?: string) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver?.url ?? 'http://127.0.0.1:4318',
  OTEL_TRACES_SAMPLER: sampler,
  ...(arg ? { OTEL_TRACES_SAMPLER_ARG: arg } : {})
})

/**
 * The example on real PostgreSQL and Redis, its dashboard mix (summary,
 * transactions, quotes, insights, static files, ~5 % writes) as logged-in
 * users, with tracing off, on at 10 % (parentbased_traceidratio 0.1) and on
 * at 100 %, exporting over OTLP/HTTP (protobuf, batched) to a receiver in
 * this process that discards what it gets.
 */
export default defineScenario({
  kind: 'http',
  name: 'finance-tracing',
  description: 'examples/finance-api dashboard mix: OpenTelemetry tracing off vs on at 10 % and 100 % sampling, exporting over OTLP/HTTP to a local receiver.',
  baseline: 'untraced',
  variants: [
    { name: 'untraced', server },
    { name: 'traced 10%', server, get env () { return traced('parentbased_traceidratio', '0.1') } },
    { name: 'traced 100%', server, get env () { return traced('parentbased_always_on') } }
  ],
  requests: mix,
  connections: 32,
  async setup () {
    const baseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
    const database = `finance_tracing_${process.pid}_${Date.now().toString(36)}`
    const dbUrl = new URL(baseUrl)
    dbUrl.pathname = `/${database}`
    await admin(baseUrl, `CREATE DATABASE "${database}" TEMPLATE template0`)
    await migrate(dbUrl.toString())
    firstUserId = (await seed(dbUrl.toString(), { users: USERS })).firstUserId
    const started = await startReceiver()
    receiver = started
    return {
      env: {
        ...serverEnv(dbUrl.toString(), process.env.REDIS_URL || 'redis://127.0.0.1:6379', `finance-tracing-${randomBytes(4).toString('hex')}:`),
        MARKET_FAILURE_RATE: '0'
      },
      async teardown () {
        console.log(`  OTLP receiver: ${started.requests} exports, ${(started.bytes / 1e6).toFixed(1)} MB`)
        await new Promise((resolve) => started.server.close(resolve))
        await admin(baseUrl, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)
      }
    }
  },
  checks: [
    { variant: 'traced 10%', min: 0.95 },
    { variant: 'traced 100%', min: 0.8 }
  ]
})
