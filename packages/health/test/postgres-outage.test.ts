import { getHub } from '@headroom/core'
import { startPostgres, waitFor, sleep, testApp } from '@headroom/testing'
import pg from 'pg'
import t from 'tap'
import { headroomHealth } from '../src/index.js'

/**
 * PostgreSQL (a private instance) stopped: liveness stays 200, readiness
 * turns 503 within one check interval and back to 200 within one interval of
 * the restart; a storm of 1,000 probes runs the check at most once per interval.
 */
t.test('PostgreSQL stopped and restarted', async (t) => {
  const postgres = await startPostgres(t)
  const intervalMs = 1000
  let runs = 0
  const app = testApp(t)
  // the check a pool plugin would contribute: a fresh, bounded connection so
  // the test depends on nothing but pg
  getHub(app).addCheck({
    name: 'postgres:primary',
    owner: 'test',
    check: async () => {
      runs++
      const client = new pg.Client({ connectionString: postgres.url, connectionTimeoutMillis: 900 })
      client.on('error', () => {})
      const started = performance.now()
      try {
        await client.connect()
        await client.query('SELECT 1')
        return { status: 'pass', observedValue: Math.round(performance.now() - started), observedUnit: 'ms' }
      } finally {
        await client.end().catch(() => {})
      }
    }
  })
  await app.register(headroomHealth, { checkIntervalMs: intervalMs, checkTimeoutMs: 1000, handleSignals: false, pressure: false })
  await app.ready()

  const ready = async () => (await app.inject('/health/ready')).statusCode
  t.equal(await ready(), 200, 'ready while PostgreSQL runs')

  await postgres.stop()
  const stoppedAt = Date.now()
  await waitFor('readiness to turn 503', async () => (await ready()) === 503, 5000, 10)
  const failAfter = Date.now() - stoppedAt
  // one interval; the slack covers this 10 ms poll, the refused connection attempt and a loaded machine
  t.ok(failAfter <= intervalMs + 1000, `503 ${failAfter} ms after the stop (interval ${intervalMs} ms)`)
  const body = (await app.inject('/health/ready')).json()
  t.match(body, { status: 'fail', checks: { 'postgres:primary': [{ status: 'fail', componentType: 'datastore' }] } })
  t.equal((await app.inject('/health')).statusCode, 200, 'liveness stays 200 while PostgreSQL is down')

  // the storm: 1,000 probes while PostgreSQL is down, spread over several intervals
  const before = runs
  const stormStart = Date.now()
  const codes: number[] = []
  const liveness: number[] = []
  for (let wave = 0; wave < 10; wave++) {
    codes.push(...await Promise.all(Array.from({ length: 100 }, async () => {
      const [r, l] = await Promise.all([app.inject('/health/ready'), app.inject('/health')])
      liveness.push(l.statusCode)
      return r.statusCode
    })))
    await sleep(150)
  }
  const stormMs = Date.now() - stormStart
  const ran = runs - before
  t.ok(codes.length === 1000 && codes.every((c) => c === 503), '1,000 readiness probes all answered 503')
  t.ok(liveness.every((c) => c === 200), '1,000 liveness probes all answered 200')
  t.ok(ran <= Math.ceil(stormMs / intervalMs), `the check ran ${ran} times for 1,000 probes over ${stormMs} ms (interval ${intervalMs} ms)`)

  await postgres.start()
  const startedAt = Date.now()
  await waitFor('readiness to turn 200', async () => (await ready()) === 200, 5000, 10)
  const passAfter = Date.now() - startedAt
  t.ok(passAfter <= intervalMs + 1000, `200 ${passAfter} ms after the restart (interval ${intervalMs} ms)`)
  t.equal((await app.inject('/health')).statusCode, 200)
})
