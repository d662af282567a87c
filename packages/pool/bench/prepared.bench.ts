import { readFileSync } from 'node:fs'
import { defineScenario } from '@headroom/benchmarks'
import Fastify from 'fastify'
import pg from 'pg'
import headroomPool from '../src/index.js'
import { summaryData, SUMMARY_SQL, USERS } from './summary-data.js'

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const server = new URL('./servers/summary.ts', import.meta.url)
const CONNECTIONS = 4

/** utime + stime of the backends, in clock ticks (100 a second on Linux): PostgreSQL must run on this machine */
function cpuTicks (pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    // the fields after the command name, which is in parentheses and may hold spaces
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks
}

/** `n` summary reads for random users, CONNECTIONS at a time: PostgreSQL CPU per query and the rate */
async function measure (config: pg.ClientConfig, prepare: boolean, n: number): Promise<{ cpuUs: number, qps: number }> {
  const applicationName = `bench-prepared-${process.pid}-${prepare ? 'named' : 'unnamed'}`
  const app = Fastify({ logger: false })
  await app.register(headroomPool, { primary: config, min: CONNECTIONS, max: CONNECTIONS, applicationName })
  await app.ready()
  try {
    const run = async (count: number) => {
      let next = 0
      await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
        while (next++ < count) await app.db.query(SUMMARY_SQL, [1 + Math.floor(Math.random() * USERS)], { prepare })
      }))
    }
    await run(CONNECTIONS * 20) // every connection has parsed (and, named, planned) the statement
    const { rows } = await app.db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName])
    const pids = rows.map((r) => r.pid)
    const before = cpuTicks(pids)
    const started = performance.now()
    await run(n)
    const seconds = (performance.now() - started) / 1000
    return { cpuUs: (cpuTicks(pids) - before) * 10_000 / n, qps: n / seconds }
  } finally {
    await app.close()
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export default [
  defineScenario({
    kind: 'http',
    name: 'pool-prepared',
    description: `The finance example's summary read (an aggregate over ${USERS.toLocaleString('en')} users' accounts and transactions) per request: ` +
      'fastify.db.query unnamed (parsed and planned on every call) vs { prepare: true } (a named statement per connection), both max 25.',
    baseline: 'unnamed',
    variants: [
      { name: 'unnamed', server, env: { POOL_PREPARE: '0' } },
      { name: 'prepared', server, env: { POOL_PREPARE: '1' } }
    ],
    requests: () => Array.from({ length: 200 }, (_, i) => ({ path: `/summary/${1 + ((i * 7919) % USERS)}` })),
    async setup () {
      const data = await summaryData(databaseUrl)
      return { env: { DATABASE_URL: databaseUrl, POOL_BENCH_OPTIONS: data.config.options! }, teardown: data.drop }
    },
    checks: [{ variant: 'prepared', min: 1.1 }]
  }),
  defineScenario({
    kind: 'custom',
    name: 'pool-prepared-cpu',
    description: 'PostgreSQL CPU per summary read (utime + stime of the pool\'s backends from /proc), unnamed vs prepared, 4 connections, alternating rounds.',
    async run ({ quick, log }) {
      const data = await summaryData(databaseUrl)
      const n = quick ? 1000 : 4000
      const rounds = quick ? 2 : 4
      const results: Record<'unnamed' | 'prepared', Array<{ cpuUs: number, qps: number }>> = { unnamed: [], prepared: [] }
      try {
        for (let r = 0; r < rounds; r++) {
          // alternate which goes first, so a drift in the machine's load does not favour one
          for (const prepare of r % 2 === 0 ? [false, true] : [true, false]) {
            const m = await measure(data.config, prepare, n)
            results[prepare ? 'prepared' : 'unnamed'].push(m)
            log(`round ${r + 1} ${prepare ? 'prepared' : 'unnamed'}: ${m.cpuUs.toFixed(0)} µs PostgreSQL CPU/query, ${m.qps.toFixed(0)} queries/s`)
          }
        }
      } finally {
        await data.drop()
      }
      const cpu = (v: 'unnamed' | 'prepared') => median(results[v].map((m) => m.cpuUs))
      const qps = (v: 'unnamed' | 'prepared') => median(results[v].map((m) => m.qps))
      const ratio = cpu('unnamed') / cpu('prepared')
      return {
        rows: (['unnamed', 'prepared'] as const).map((v) => ({
          variant: v,
          'PostgreSQL CPU µs/query (median)': Math.round(cpu(v)),
          'queries/s (median)': Math.round(qps(v)),
          'CPU ratio unnamed/this': Number((cpu('unnamed') / cpu(v)).toFixed(2))
        })),
        checks: [{ name: 'prepared uses less PostgreSQL CPU per query', pass: ratio > 1, detail: `unnamed/prepared = ${ratio.toFixed(2)}` }],
        notes: [`${rounds} rounds of ${n} queries per variant, ${CONNECTIONS} connections; CPU from /proc/<backend pid>/stat (10 ms ticks)`]
      }
    }
  })
]
