import t from 'tap'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { isolatedSchema } from '@headroom/testing'
import { inMemoryTracing } from '@headroom/testing/tracing'
import { errors } from '../src/index.js'
import { build } from './helpers.js'

// a real SDK in this process only: spans exported to memory
const tracing = inMemoryTracing()
t.teardown(() => tracing.shutdown())
t.beforeEach(() => tracing.reset())

const SECRET = 'iban-DE89370400440532013000'

function leaks (t: { notOk: (v: unknown, m: string) => void }, secrets: string[]): void {
  const strings = tracing.strings()
  for (const secret of secrets) t.notOk(strings.some((s) => s.includes(secret)), `no span carries ${secret}`)
}

t.test('a query is a CLIENT span in the database conventions, with no parameter', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1 })
  await app.db.query('CREATE TABLE accounts (id int PRIMARY KEY, iban text NOT NULL)')
  tracing.reset()
  await tracing.inSpan('request', async () => {
    await app.db.query('INSERT INTO accounts VALUES ($1, $2)', [1, SECRET])
    await app.db.query("SELECT id FROM accounts WHERE iban <> 'literal-value' AND id > 918273645", [], { name: 'accounts.byIban' })
  })
  const request = tracing.named('request')[0]!
  const [insert, select] = tracing.spans().filter((s) => s.name !== 'request')
  t.equal(insert!.name, 'INSERT INTO accounts VALUES ($1, $2)', 'named after the normalised statement')
  t.equal(insert!.kind, SpanKind.CLIENT)
  t.equal(tracing.parentOf(insert!), request, 'a child of the active span')
  t.match(insert!.attributes, {
    'db.system.name': 'postgresql',
    'db.operation.name': 'INSERT',
    'db.query.summary': 'INSERT INTO accounts VALUES ($1, $2)',
    'db.query.text': 'INSERT INTO accounts VALUES ($1, $2)',
    'db.namespace': 'test',
    'server.address': '127.0.0.1',
    'server.port': 5432,
    'db.client.connection.pool.name': 'primary',
    'headroom.pool.role': 'primary'
  })
  t.type(insert!.attributes['headroom.pool.acquire_wait_ms'], 'number', 'the acquire wait')
  t.equal(select!.name, 'accounts.byIban', 'the caller-given name')
  t.equal(select!.attributes['db.query.text'], 'SELECT id FROM accounts WHERE iban <> ? AND id > ?', 'literals are replaced')
  t.equal(select!.status.code, SpanStatusCode.UNSET)
  // a number no timing or port contains by chance (41 once matched a span's acquire wait)
  leaks(t, [SECRET, 'literal-value', '918273645'])
})

t.test('a failed query: status ERROR with the SQLSTATE, not the message that quotes the value', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1 })
  await app.db.query('CREATE TABLE accounts (id int PRIMARY KEY)')
  await app.db.query('INSERT INTO accounts VALUES (1)')
  tracing.reset()
  await tracing.inSpan('request', async () => {
    await t.rejects(app.db.query('INSERT INTO accounts VALUES ($1)', [1]), errors.QueryFailed)
    // PostgreSQL's message quotes the bad input: invalid input syntax for type integer: "<value>"
    await t.rejects(app.db.query('SELECT * FROM accounts WHERE id = $1', [SECRET]), errors.QueryFailed)
  })
  const [duplicate, invalid] = tracing.spans()
  t.equal(duplicate!.status.code, SpanStatusCode.ERROR)
  t.equal(duplicate!.attributes['db.response.status_code'], '23505')
  t.equal(duplicate!.attributes['error.type'], '23505')
  t.equal(invalid!.attributes['db.response.status_code'], '22P02')
  t.equal(invalid!.status.message, '22P02')
  leaks(t, [SECRET])
})

t.test('a transaction is the parent of its queries; request.db reads on a replica name the replica', async (t) => {
  const { url } = await isolatedSchema(t)
  // the shared server stands in for a replica (not in recovery, so always fresh)
  const { app } = await build(t, { primary: url, replicas: [url], min: 1 }, (app) => {
    app.post('/transfer', async (request) => {
      await request.db.transaction(async (tx) => {
        await tx.query('UPDATE accounts SET balance = balance - $1 WHERE id = 1', [SECRET.length])
      }, { isolationLevel: 'serializable' })
      return (await request.db.read('SELECT balance FROM accounts WHERE id = 1')).rows[0]
    })
  })
  await app.db.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)')
  await app.db.query('INSERT INTO accounts VALUES (1, 100)')
  await t.rejects(app.db.transaction(async () => { throw new Error('insufficient funds') }))
  tracing.reset()
  await tracing.inSpan('request', async () => {
    t.equal((await app.inject({ method: 'POST', url: '/transfer' })).statusCode, 200)
  })
  const tx = tracing.named('transaction')[0]!
  const update = tracing.named('UPDATE accounts SET balance = balance - $1 WHERE id = ?')[0]!
  t.equal(tracing.parentOf(tx)?.name, 'request')
  t.equal(tracing.parentOf(update), tx, 'the statement is a child of its transaction')
  t.match(tx.attributes, { 'db.operation.name': 'transaction', 'headroom.pool.isolation_level': 'serializable', 'headroom.pool.transaction.outcome': 'commit', 'db.client.connection.pool.name': 'primary' })
  const read = tracing.named('SELECT balance FROM accounts WHERE id = ?')[0]!
  t.match(read.attributes, { 'db.client.connection.pool.name': 'replica:0', 'headroom.pool.role': 'replica' })
  t.equal(tracing.parentOf(read)?.name, 'request')
  t.notOk(tracing.spans().some((s) => /^(BEGIN|COMMIT|SELECT pg_)/.test(s.name)), 'no spans for BEGIN, COMMIT or the LSN bookkeeping')
})

t.test('a rolled-back transaction and a refused acquire fail their spans', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 0, max: 1, maxWaiting: 0 })
  await tracing.inSpan('job', () => t.rejects(app.db.transaction(async () => { throw new Error('insufficient funds') }), /insufficient funds/))
  const tx = tracing.named('transaction')[0]!
  t.equal(tx.status.code, SpanStatusCode.ERROR)
  t.equal(tx.attributes['headroom.pool.transaction.outcome'], 'rollback')
  const client = await app.db.connect()
  t.teardown(() => client.release())
  await tracing.inSpan('request', () => t.rejects(app.db.query('SELECT 1'), errors.PoolExhausted))
  const refused = tracing.named('SELECT ?')[0]!
  t.equal(refused.attributes['error.type'], 'HEADROOM_POOL_EXHAUSTED')
  t.equal(refused.status.code, SpanStatusCode.ERROR)
})

t.test('outside a recording span (a health check, a sampled-out request) queries and transactions make no span', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1 })
  tracing.reset()
  await app.db.query('SELECT 1')
  await app.db.transaction(async (tx) => { await tx.query('SELECT 2') })
  t.same(tracing.spans().map((s) => s.name), [], 'no root spans')
  await tracing.inSpan('request', () => app.db.query('SELECT 3'))
  t.same(tracing.spans().map((s) => s.name), ['SELECT ?', 'request'], 'inside one, a child span')
})
