import { defineScenario } from '@headroom/benchmarks'
import pg from 'pg'

const server = (name: string) => new URL(`./servers/${name}.ts`, import.meta.url)
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const ROWS = 10_000

async function admin (sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/**
 * GET /accounts/:id answered by a primary-key lookup, through
 * `fastify.db.query` (bounded queue, acquire timeout, error classification,
 * duration histogram by query name, acquire-wait histogram) and through a
 * raw pg.Pool of the same size. Both servers share the machine's PostgreSQL,
 * so the ratio is the plugin's cost per query, not PostgreSQL's.
 */
export default defineScenario({
  kind: 'http',
  name: 'pool',
  description: 'Primary-key lookup per request: fastify.db.query (@headroom/pool) vs a raw pg.Pool, both max 25.',
  baseline: 'pg.Pool',
  variants: [
    { name: 'pg.Pool', server: server('raw') },
    { name: 'headroom', server: server('headroom') }
  ],
  requests: () => Array.from({ length: 100 }, (_, i) => ({ path: `/accounts/${1 + ((i * 97) % ROWS)}` })),
  async setup () {
    const table = `bench_pool_${process.pid}_${Date.now()}`
    await admin(`CREATE TABLE ${table} (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12, 2) NOT NULL)`)
    await admin(`INSERT INTO ${table} SELECT i, 'owner ' || i, i * 1.5 FROM generate_series(1, ${ROWS}) i`)
    await admin(`ANALYZE ${table}`)
    return {
      env: { POOL_BENCH_TABLE: table, DATABASE_URL: databaseUrl },
      teardown: () => admin(`DROP TABLE IF EXISTS ${table}`)
    }
  },
  checks: [{ variant: 'headroom', min: 0.95 }]
})
