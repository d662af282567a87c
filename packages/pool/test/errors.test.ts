import t from 'tap'
import { getHub } from '@headroom/core'
import { isolatedSchema, sleep } from '@headroom/testing'
import { errors } from '../src/index.js'
import { appName, backends, build } from './helpers.js'

t.test('a unique violation or a syntax error keeps the connection (connection count before and after)', async (t) => {
  const { url } = await isolatedSchema(t)
  const name = appName('unique')
  const { app } = await build(t, { primary: url, min: 2, max: 2, applicationName: name })
  await app.db.query('CREATE TABLE users (email text PRIMARY KEY)')
  await app.db.query('INSERT INTO users VALUES ($1)', ['a@example.com'])
  const before = await backends(url, name)
  t.equal(before.length, 2)
  for (let i = 0; i < 5; i++) {
    await t.rejects(app.db.query('INSERT INTO users VALUES ($1)', ['a@example.com']), { code: 'HEADROOM_POOL_QUERY_FAILED', sqlState: '23505', constraint: 'users_pkey' }, 'the SQLSTATE and constraint reach the caller')
    await t.rejects(app.db.query('SELEKT 1'), { code: 'HEADROOM_POOL_QUERY_FAILED', sqlState: '42601', cause: { code: '42601' } })
  }
  t.same(await backends(url, name), before, 'the same backends: no connection was closed or opened')
  t.equal(app.db.pools.primary.totalCount, 2)
  t.notMatch(await getHub(app).registry.metrics(), /kind="evicted"/, 'nothing evicted')
})

t.test('a query past statement_timeout fails with a clear error and the connection stays usable', async (t) => {
  const { url } = await isolatedSchema(t)
  const name = appName('timeout')
  const { app } = await build(t, { primary: url, min: 1, max: 1, statementTimeoutMs: 200, applicationName: name }, (app) => {
    app.get('/slow', async () => (await app.db.query('SELECT pg_sleep(2)', [], { name: 'report' })).rowCount)
  })
  const pid = (await app.db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
  const started = Date.now()
  const err = await app.db.query('SELECT pg_sleep(2)', [], { name: 'report' }).catch((e: unknown) => e)
  t.ok(Date.now() - started < 1500, 'canceled by the server, well before the 2 s sleep ends')
  t.ok(err instanceof errors.StatementTimeout)
  t.match(err, { code: 'HEADROOM_POOL_STATEMENT_TIMEOUT', statusCode: 503, message: 'A query was canceled by the server: it ran past statement_timeout (200 ms)', query: 'report' })
  t.equal(((err as Error).cause as { code?: string }).code, '57014', 'the server error is kept as the cause')
  t.equal((await app.db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid, pid, 'the same connection serves the next query')
  const res = await app.inject('/slow')
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.equal(res.json().code, 'HEADROOM_POOL_STATEMENT_TIMEOUT')
  t.same(await backends(url, name), [pid])
})

t.test('idle_in_transaction_session_timeout is set on the server', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, idleInTransactionTimeoutMs: 1234, statementTimeoutMs: 4321 })
  const { rows } = await app.db.query<{ idle: string, stmt: string }>("SELECT current_setting('idle_in_transaction_session_timeout') AS idle, current_setting('statement_timeout') AS stmt")
  t.same(rows[0], { idle: '1234ms', stmt: '4321ms' })
})

t.test('a transaction whose callback throws a SQL error rolls back and keeps the connection', async (t) => {
  const { url } = await isolatedSchema(t)
  const name = appName('txerr')
  const { app } = await build(t, { primary: url, min: 1, max: 1, applicationName: name })
  await app.db.query('CREATE TABLE t (id int PRIMARY KEY)')
  const before = await backends(url, name)
  await t.rejects(app.db.transaction(async (tx) => {
    await tx.query('INSERT INTO t VALUES (1)')
    await tx.query('INSERT INTO t VALUES (1)')
  }), { code: 'HEADROOM_POOL_QUERY_FAILED', sqlState: '23505' })
  t.equal((await app.db.query('SELECT * FROM t')).rowCount, 0, 'rolled back')
  const inTx = await app.db.query<{ s: string }>('SELECT state AS s FROM pg_stat_activity WHERE pid = pg_backend_pid()')
  t.equal(inTx.rows[0]!.s, 'active', 'the connection is not left inside the aborted transaction')
  t.same(await backends(url, name), before)
})

t.test('idle_in_transaction_session_timeout ends a stalled transaction: it fails with a 503, nothing runs outside it, the pool carries on', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1, idleInTransactionTimeoutMs: 200 })
  await app.db.query('CREATE TABLE t (id int)')
  const err = await app.db.transaction(async (tx) => {
    await tx.query('INSERT INTO t VALUES (1)')
    await sleep(500)
    await tx.query('INSERT INTO t VALUES (2)')
  }).catch((e: unknown) => e)
  t.match(err, { code: 'HEADROOM_POOL_UNAVAILABLE', statusCode: 503 })
  t.equal((await app.db.query('SELECT * FROM t')).rowCount, 0, 'neither insert was committed, the second never ran on its own')
  t.equal((await app.db.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1)
})

t.test('a transaction whose callback swallowed a SQL error does not pass for committed', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1 })
  await app.db.query('CREATE TABLE t (id int PRIMARY KEY)')
  for (const scope of [app.db, app.db.session()]) {
    const err = await scope.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES (1)')
      await tx.query('INSERT INTO t VALUES (1)').catch(() => {})
      return 'done'
    }).catch((e: unknown) => e)
    t.ok(err instanceof errors.TransactionAborted, 'COMMIT answered ROLLBACK: an error, not "done"')
  }
  t.equal((await app.db.query('SELECT * FROM t')).rowCount, 0)
})

t.test('socket errors count as connection errors, SQLSTATEs only by their class', async (t) => {
  const { isConnectionError } = await import('../src/classify.js')
  // EPIPE is five capitals like a SQLSTATE; the connection it came from is broken
  for (const code of ['EPIPE', 'ECONNRESET', 'ETIMEDOUT', 'EBADF']) t.ok(isConnectionError(Object.assign(new Error(code), { code })), code)
  for (const code of ['08006', '57P01', '25P03']) t.ok(isConnectionError({ code }), `${code} ends the session`)
  for (const code of ['23505', '22P02', '40001', 'XX000', 'P0001', 'HEADROOM_POOL_QUERY_FAILED']) t.notOk(isConnectionError({ code }), `${code} leaves the connection as it was`)
})
