import { createHash } from 'node:crypto'
import t from 'tap'
import { getHub } from '@headroom/core'
import { isolatedSchema, waitFor } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import { admin, appName, build } from './helpers.js'

interface Prepared { name: string, statement: string }

/** the named statements of the one connection of a `max: 1` app (pg_prepared_statements is per session) */
async function preparedOn (app: FastifyInstance): Promise<Prepared[]> {
  const { rows } = await app.db.query<Prepared>("SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'headroom_%' ORDER BY prepare_time, name")
  return rows
}

async function metric (app: FastifyInstance, pattern: RegExp): Promise<number | null> {
  const m = pattern.exec(await getHub(app).registry.metrics())
  return m === null ? null : Number(m[1])
}

const SUMMARY = 'SELECT count(*)::int AS n, coalesce(sum(amount), 0)::int AS total FROM entries WHERE account_id = $1'

t.test('{ prepare: true } sends a named statement, parsed once per connection', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1 })
  await app.db.query('CREATE TABLE entries (account_id int, amount int)')
  await app.db.query('INSERT INTO entries SELECT i % 10, i FROM generate_series(1, 100) i')

  t.same(await preparedOn(app), [], 'nothing named before')
  for (let i = 0; i < 3; i++) {
    const { rows } = await app.db.query<{ n: number, total: number }>(SUMMARY, [3], { prepare: true })
    t.same(rows[0], { n: 10, total: 480 })
  }
  const named = await preparedOn(app)
  t.equal(named.length, 1, 'one statement for three calls')
  t.equal(named[0]!.statement, SUMMARY)
  t.match(named[0]!.name, /^headroom_[0-9a-f]{24}$/)
  t.equal(await metric(app, /headroom_pool_prepared_statements\{pool="primary"\} (\d+)/), 1)

  await app.db.query('SELECT $1::int AS unnamed', [1])
  await app.db.read('SELECT $1::int AS unnamed_read', [1])
  t.equal((await preparedOn(app)).length, 1, 'queries without prepare stay unnamed')
  await app.db.read('SELECT $1::int AS a_read', [1], { prepare: true })
  t.equal((await preparedOn(app)).length, 2, 'read() prepares too')
})

t.test('the plugin option prepare: true names every query() and read() unless the call says prepare: false', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1, prepare: true })
  await app.db.query('SELECT $1::int AS a', [1])
  await app.db.query('SELECT $1::int AS b', [1], { prepare: false })
  await app.db.query({ text: 'SELECT $1::int AS c', name: 'mine' }, [1])
  const statements = (await app.db.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY statement', [], { prepare: false })).rows.map((r) => r.statement)
  t.same(statements, ['SELECT $1::int AS a', 'SELECT $1::int AS c'], 'a by hash, c under pg\'s own name, b unnamed')
})

t.test('bounded: past statementCacheSize the least recently used statement is deallocated', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1, statementCacheSize: 3 })
  const q = (i: number) => app.db.query<{ v: number }>(`SELECT $1::int + ${i} AS v`, [1], { prepare: true })
  await q(1)
  await q(2)
  await q(3)
  await q(1) // 1 is now the most recently used: 2 goes first
  await q(4)
  await q(5)
  const left = (await preparedOn(app)).map((p) => p.statement).sort()
  t.same(left, ['SELECT $1::int + 1 AS v', 'SELECT $1::int + 4 AS v', 'SELECT $1::int + 5 AS v'], 'three kept, 2 and 3 deallocated')
  t.equal(await metric(app, /headroom_pool_statement_evictions_total\{pool="primary"\} (\d+)/), 2)
  t.equal(await metric(app, /headroom_pool_prepared_statements\{pool="primary"\} (\d+)/), 3)
  t.equal((await q(2)).rows[0]!.v, 3, 'an evicted statement is prepared again when it comes back')
  t.equal((await preparedOn(app)).length, 3, 'still three')
})

t.test('a migration that changes a column type between two calls: the statement is prepared again, not an error', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1 })
  await app.db.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int)')
  await app.db.query('INSERT INTO accounts VALUES (1, 100)')
  const sql = 'SELECT * FROM accounts WHERE id = $1'
  t.same((await app.db.query(sql, [1], { prepare: true })).rows, [{ id: 1, balance: 100 }])

  // another connection migrates: the cached plan's result type no longer holds (0A000)
  await admin(url, 'ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(12,2)')
  t.same((await app.db.query(sql, [1], { prepare: true })).rows, [{ id: 1, balance: '100.00' }], 'the new type, no error')
  t.equal(await metric(app, /headroom_pool_statement_reprepares_total\{pool="primary",reason="result_type_changed"\} (\d+)/), 1)
  t.equal((await preparedOn(app)).length, 1, 'one statement under that name, the new one')

  // a column added: the same on the read-your-writes path (request.db / session())
  await admin(url, 'ALTER TABLE accounts ADD COLUMN currency text DEFAULT \'EUR\'')
  t.same((await app.db.session().query(sql, [1], { prepare: true })).rows, [{ id: 1, balance: '100.00', currency: 'EUR' }])
  t.equal(await metric(app, /headroom_pool_statement_reprepares_total\{pool="primary",reason="result_type_changed"\} (\d+)/), 2)
})

t.test('a statement the server lost (DEALLOCATE ALL on the connection) is prepared again', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1 })
  const sql = 'SELECT $1::int * 2 AS v'
  t.equal((await app.db.query<{ v: number }>(sql, [2], { prepare: true })).rows[0]!.v, 4)
  const client = await app.db.connect()
  await client.query('DEALLOCATE ALL') // what DISCARD ALL or a pooler's reset does behind pg's back
  client.release()
  t.equal((await app.db.query<{ v: number }>(sql, [3], { prepare: true })).rows[0]!.v, 6, 'no 26000 for the caller')
  t.equal(await metric(app, /headroom_pool_statement_reprepares_total\{pool="primary",reason="missing"\} (\d+)/), 1)
})

t.test('a session that already holds the statement (42P05: a shared session, a PREPARE by hand) has it adopted, not an error', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1 })
  const sql = 'SELECT $1::int * 3 AS v'
  const name = `headroom_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`
  const client = await app.db.connect()
  // what PGlite's socket server does when a second connection prepares the same text: one session for all
  await client.query(`PREPARE ${name} (int) AS ${sql}`)
  client.release()
  t.equal((await app.db.query<{ v: number }>(sql, [2], { prepare: true })).rows[0]!.v, 6, 'no 42P05 for the caller')
  t.equal((await app.db.query<{ v: number }>(sql, [3], { prepare: true })).rows[0]!.v, 9, 'the next call uses it without a Parse')
  t.equal(await metric(app, /headroom_pool_statement_reprepares_total\{pool="primary",reason="already_prepared"\} (\d+)/), 1, 'adopted once')
  t.same((await preparedOn(app)).map((p) => p.name), [name], 'still the one statement')
})

t.test('a syntax error in a prepared query is the caller\'s error and leaves nothing in the cache', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1 })
  const err = await app.db.query('SELEC $1::int', [1], { prepare: true }).catch((e: unknown) => e)
  t.match(err, { code: 'HEADROOM_POOL_QUERY_FAILED', sqlState: '42601' })
  t.equal(await metric(app, /headroom_pool_prepared_statements\{pool="primary"\} (\d+)/), 0)
  t.equal((await app.db.query<{ v: number }>('SELECT $1::int AS v', [7], { prepare: true })).rows[0]!.v, 7, 'the connection is fine')
})

t.test('after pg_terminate_backend the new connection prepares its statements afresh', async (t) => {
  const { url } = await isolatedSchema(t)
  const name = appName('prepared-terminate')
  const { app, logs } = await build(t, { primary: url, min: 1, max: 1, applicationName: name })
  const sql = 'SELECT $1::int + 1 AS v, pg_backend_pid() AS pid'
  const first = (await app.db.query<{ v: number, pid: number }>(sql, [1], { prepare: true })).rows[0]!
  await admin(url, 'SELECT pg_terminate_backend($1)', [first.pid])
  await waitFor('the pool to notice', async () => logs.some((l) => /connection lost/.test(l.msg)), 5000)
  const second = (await app.db.query<{ v: number, pid: number }>(sql, [2], { prepare: true })).rows[0]!
  t.not(second.pid, first.pid, 'a new backend')
  t.equal(second.v, 3)
  t.same((await preparedOn(app)).map((p) => p.statement), [sql], 'prepared on the new connection')
  t.equal(await metric(app, /headroom_pool_prepared_statements\{pool="primary"\} (\d+)/), 1, 'the lost connection\'s statement left the gauge')
})

t.test('concurrent prepared queries over several connections, with evictions on the way, all answer right', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 5, max: 5, maxWaiting: 400, statementCacheSize: 2 })
  const statements = [0, 1, 2, 3].map((k) => `SELECT $1::int + ${k} AS v, pg_backend_pid() AS pid`)
  const calls = Array.from({ length: 400 }, (_, i) => {
    const k = i % statements.length
    return app.db.query<{ v: number, pid: number }>(statements[k]!, [i], { prepare: true }).then(({ rows }) => ({ i, k, ...rows[0]! }))
  })
  const results = await Promise.all(calls)
  t.ok(results.every((r) => r.v === r.i + r.k), 'every answer is its own statement\'s')
  t.ok(new Set(results.map((r) => r.pid)).size > 1, 'spread over several connections')
  const evictions = await metric(app, /headroom_pool_statement_evictions_total\{pool="primary"\} (\d+)/)
  t.ok(evictions !== null && evictions > 0, `evictions happened (${evictions})`)
  const held = await metric(app, /headroom_pool_prepared_statements\{pool="primary"\} (\d+)/)
  t.ok(held !== null && held <= 2 * 5, `at most statementCacheSize per connection (${held})`)
})

t.test('inside transaction() statements are not named: a migration between two transactions costs no error', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1, prepare: true })
  await app.db.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int)')
  await app.db.query('INSERT INTO accounts VALUES (1, 100)')
  const sql = 'SELECT balance FROM accounts WHERE id = $1'
  const inTx = () => app.db.transaction(async (tx) => {
    const { rows } = await tx.query<{ balance: unknown }>(sql, [1], { prepare: true })
    const named = await tx.query('SELECT 1 FROM pg_prepared_statements WHERE statement = $1', [sql])
    return { balance: rows[0]!.balance, named: named.rowCount }
  })
  t.same(await inTx(), { balance: 100, named: 0 })
  await admin(url, 'ALTER TABLE accounts ALTER COLUMN balance TYPE text')
  t.same(await inTx(), { balance: '100', named: 0 })
})

t.test('statementCacheSize and prepare are checked at register', async (t) => {
  const { url } = await isolatedSchema(t)
  await t.rejects(build(t, { primary: url, statementCacheSize: 0 }), { code: 'HEADROOM_POOL_INVALID_OPTION', message: /statementCacheSize/ })
  await t.rejects(build(t, { primary: url, prepare: 'yes' as unknown as boolean }), { code: 'HEADROOM_POOL_INVALID_OPTION', message: /prepare/ })
})
