import t from 'tap'
import pg from 'pg'
import { startPostgres, startReplica, waitFor } from '../src/index.js'

t.test('a private PostgreSQL is killed and restarted, and queries work after the restart', async (t) => {
  const server = await startPostgres(t)
  const { rows } = await server.query<{ one: number }>('SELECT 1 AS one')
  t.equal(rows[0]?.one, 1)
  t.not(server.port, 5432, 'never the shared server')

  const pool = new pg.Pool({ connectionString: server.url, max: 2 })
  pool.on('error', () => {}) // idle clients die with the server: expected here
  t.teardown(() => pool.end())
  await pool.query('CREATE TABLE survives (v int)')
  await pool.query('INSERT INTO survives VALUES (42)')

  const pid = server.pid()
  t.type(pid, 'number')
  await server.kill()
  t.equal(server.pid(), null, 'postmaster gone after kill')
  await t.rejects(server.query('SELECT 1'), 'queries fail while it is down')

  await server.start()
  t.not(server.pid(), pid, 'a new postmaster')
  await waitFor('the pool to reconnect', async () => (await pool.query('SELECT v FROM survives')).rows[0]?.v === 42)
  t.pass('the pool queries again after the restart')

  await server.stop()
  await t.rejects(server.query('SELECT 1'))
  await server.restart()
  t.equal((await server.query<{ v: number }>('SELECT v FROM survives')).rows[0]?.v, 42, 'data survives a clean restart')
})

t.test('a streaming replica is in recovery and sees rows written on its primary', async (t) => {
  const primary = await startPostgres(t)
  const replica = await startReplica(t, primary)
  t.equal((await replica.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r, true)
  t.equal((await primary.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r, false)

  await primary.query('CREATE TABLE replicated (v text)')
  await primary.query("INSERT INTO replicated VALUES ('written on the primary')")
  await replica.caughtUp()
  t.same((await replica.query('SELECT v FROM replicated')).rows, [{ v: 'written on the primary' }])
  await t.rejects(replica.query("INSERT INTO replicated VALUES ('x')"), /read-only/, 'the replica refuses writes')
})
