import t from 'tap'
import pg from 'pg'
import { Redis } from 'ioredis'
import { isolatedRedis, isolatedSchema, type TestContext } from '../src/index.js'

/** A teardown list we run ourselves, so the test can look at the world after it. */
function scope (): TestContext & { run (): Promise<void> } {
  const fns: Array<() => unknown> = []
  return {
    teardown (fn) { fns.push(fn) },
    async run () { for (const fn of fns.reverse()) await fn() }
  }
}

async function sharedSchemaExists (name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' })
  await client.connect()
  try {
    const { rows } = await client.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [name])
    return rows.length === 1
  } finally {
    await client.end()
  }
}

t.test('two tests running at once get their own schema and key prefix and see none of each other\'s data', async (t) => {
  const a = scope()
  const b = scope()
  const [sa, sb] = await Promise.all([isolatedSchema(a), isolatedSchema(b)])
  const [ra, rb] = await Promise.all([isolatedRedis(a), isolatedRedis(b)])
  t.not(sa.schema, sb.schema)
  t.not(ra.prefix, rb.prefix)

  // the same unqualified table name in both: each connection sees only its own
  const pa = new pg.Pool(sa.config)
  const pb = new pg.Pool({ connectionString: sb.url })
  try {
    await Promise.all([
      pa.query('CREATE TABLE items (v text)').then(() => pa.query("INSERT INTO items VALUES ('from a')")),
      pb.query('CREATE TABLE items (v text)').then(() => pb.query("INSERT INTO items VALUES ('from b')"))
    ])
    t.same((await pa.query('SELECT v FROM items')).rows, [{ v: 'from a' }])
    t.same((await pb.query('SELECT v FROM items')).rows, [{ v: 'from b' }])
  } finally {
    await Promise.all([pa.end(), pb.end()])
  }

  const ca = ra.client()
  const cb = rb.client()
  await ca.set(`${ra.prefix}k`, 'a')
  await cb.set(`${rb.prefix}k`, 'b')
  t.same(await ca.keys(`${ra.prefix}*`), [`${ra.prefix}k`])
  t.same(await cb.keys(`${rb.prefix}*`), [`${rb.prefix}k`])

  await Promise.all([a.run(), b.run()])
  t.notOk(await sharedSchemaExists(sa.schema), 'schema a dropped at teardown')
  t.notOk(await sharedSchemaExists(sb.schema), 'schema b dropped at teardown')
  const probe = new Redis(ra.url)
  t.teardown(() => probe.disconnect())
  t.same(await probe.keys(`${ra.prefix}*`), [], 'keys under prefix a removed at teardown')
  t.same(await probe.keys(`${rb.prefix}*`), [], 'keys under prefix b removed at teardown')
})
