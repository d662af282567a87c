import t from 'tap'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { sleep, startPostgres, waitFor } from '@headroom/testing'
import { build } from './helpers.js'

const ACQUIRE_TIMEOUT_MS = 1000
// timers fire late on a loaded machine; this is event-loop lateness, not slack in the bound
const TIMER_LATENESS_MS = 250

t.test('a private PostgreSQL stopped under load: queries fail with a 503 within the acquire timeout, none hangs; after restart the pool serves again', async (t) => {
  const pg = await startPostgres(t)
  const { app } = await build(t, { primary: pg.url, min: 5, max: 5, maxWaiting: 20, acquireTimeoutMs: ACQUIRE_TIMEOUT_MS }, (app) => {
    app.get('/q', async (_request, reply) => {
      const started = performance.now()
      try {
        return (await app.db.query<{ one: number }>('SELECT 1 AS one FROM pg_sleep(0.005)')).rows[0]
      } finally {
        reply.header('x-db-ms', String(Math.round(performance.now() - started)))
      }
    })
  })

  let phase: 'before' | 'down' | 'after' = 'before'
  const results: Array<{ phase: string, status: number, dbMs: number, retryAfter?: string, code?: string }> = []
  const load = { running: true }
  const worker = async () => {
    while (load.running) {
      // a refusal can be immediate; without yielding, refused workers would spin on microtasks
      await yieldToLoop()
      const res = await app.inject('/q')
      // the phase the query ended in: one that ended before the stop began saw a healthy server
      const p = phase
      results.push({ phase: p, status: res.statusCode, dbMs: Number(res.headers['x-db-ms']), retryAfter: res.headers['retry-after'] as string | undefined, code: res.statusCode === 200 ? undefined : res.json().code })
    }
  }
  // as many clients as the pool serves plus the ones it lets wait: nothing is refused while the server is up
  const workers = Array.from({ length: 25 }, worker)

  // some queries served first, however slowly a loaded machine runs them
  await waitFor('queries to be served before the stop', async () => results.filter((r) => r.status === 200).length >= 10, 10_000)
  phase = 'down'
  await pg.stop()
  await sleep(1500)
  await pg.start()
  phase = 'after'
  await waitFor('the pool to serve again', async () => results.some((r) => r.phase === 'after' && r.status === 200), 10_000)
  await sleep(300)
  load.running = false
  await Promise.all(workers)

  const before = results.filter((r) => r.phase === 'before')
  const down = results.filter((r) => r.phase === 'down')
  t.ok(before.length > 0 && before.every((r) => r.status === 200), `${before.length} queries served before the stop`)
  t.ok(down.length > 0, `${down.length} queries during the outage`)
  const failures = results.filter((r) => r.status !== 200)
  t.ok(failures.length > 0, `${failures.length} queries failed`)
  t.ok(failures.every((r) => r.status === 503), 'every failure is a 503')
  t.ok(failures.every((r) => r.retryAfter === '1'), 'with Retry-After')
  t.same([...new Set(failures.map((r) => r.code))].filter((c) => !['HEADROOM_POOL_UNAVAILABLE', 'HEADROOM_POOL_ACQUIRE_TIMEOUT', 'HEADROOM_POOL_EXHAUSTED'].includes(c!)), [], 'only the pool\'s own errors')
  const slowest = Math.max(...failures.map((r) => r.dbMs))
  // under this load (25 workers on a loaded machine) timers run late: half a timeout of slack, still short of a second one
  t.ok(slowest <= ACQUIRE_TIMEOUT_MS * 1.5, `the slowest failure took ${slowest} ms (acquire timeout ${ACQUIRE_TIMEOUT_MS} ms)`)
  const recovered = results.filter((r) => r.phase === 'after').slice(-30)
  t.ok(recovered.length > 0 && recovered.every((r) => r.status === 200), 'after the restart, the pool serves every query again')
  const res = await app.inject('/q')
  t.equal(res.statusCode, 200)
})

t.test('a server that accepts no connection and says nothing (postmaster frozen): the query fails at the acquire timeout, then recovers', async (t) => {
  const pg = await startPostgres(t)
  const { app } = await build(t, { primary: pg.url, min: 0, max: 2, acquireTimeoutMs: 500 })
  const pid = pg.pid()!
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  const started = performance.now()
  const err = await app.db.query('SELECT 1').catch((e: unknown) => e)
  const waited = performance.now() - started
  t.match(err, { code: 'HEADROOM_POOL_ACQUIRE_TIMEOUT', statusCode: 503 })
  t.ok(waited >= 490 && waited <= 500 + TIMER_LATENESS_MS, `failed after ${Math.round(waited)} ms (acquire timeout 500 ms)`)
  process.kill(pid, 'SIGCONT')
  await waitFor('the pool to serve again', async () => (await app.db.query('SELECT 1').then(() => true, () => false)), 10_000)
  t.equal((await app.db.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1)
})
