import t from 'tap'
import { getHub } from '@headroom/core'
import { isolatedSchema, waitFor, sleep } from '@headroom/testing'
import { admin, appName, backends, build } from './helpers.js'

t.test('pg_terminate_backend on every pooled connection: the process survives and the next query succeeds', async (t) => {
  const { url } = await isolatedSchema(t)
  const name = appName('terminate')
  const { app, logs } = await build(t, { primary: url, applicationName: name })
  const before = await backends(url, name)
  t.equal(before.length, 5)

  const { rows } = await admin<{ ok: boolean }>(url, 'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1', [name])
  t.equal(rows.filter((r) => r.ok).length, 5, 'all five terminated')
  // the pool learns of it from the sockets, asynchronously
  await waitFor('the pool to notice', async () => logs.filter((l) => /connection lost/.test(l.msg)).length === 5, 5000)

  const { rows: [row] } = await app.db.query<{ one: number }>('SELECT 1 AS one')
  t.equal(row!.one, 1, 'the next query succeeds')
  t.match(await getHub(app).registry.metrics(), /headroom_pool_errors_total\{pool="primary",kind="connection_lost"\} 5/, 'counted')
  // at least min: a top-up racing the query above may open one more, which idleTimeoutMs closes later
  await waitFor('the pool to reopen its minimum', async () => (await backends(url, name)).length >= 5, 5000)
  const after = await backends(url, name)
  t.equal(after.filter((pid) => before.includes(pid)).length, 0, 'only fresh connections')
})

t.test('a connection terminated inside a transaction: that transaction fails with a 503, nothing crashes, the next one succeeds', async (t) => {
  const { url } = await isolatedSchema(t)
  const name = appName('terminate-tx')
  const { app } = await build(t, { primary: url, min: 1, max: 1, applicationName: name })
  const err = await app.db.transaction(async (tx) => {
    const pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
    await admin(url, 'SELECT pg_terminate_backend($1)', [pid])
    await sleep(100)
    await tx.query('SELECT 1')
  }).catch((e: unknown) => e)
  t.match(err, { code: 'HEADROOM_POOL_UNAVAILABLE', statusCode: 503 })
  t.equal((await app.db.transaction(async (tx) => (await tx.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one)), 1)
  t.match(await getHub(app).registry.metrics(), /kind="evicted"/, 'the dead connection was evicted')
})
