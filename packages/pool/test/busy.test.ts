import t from 'tap'
import { isolatedSchema } from '@headroom/testing'
import { build } from './helpers.js'

// Busy is not down: after a blocked event loop, timers run before sockets are
// read, so a waiter whose connection came back during the stall was failed
// with "acquire timeout" before the query's result (and the release) was
// even read. The shared PostgreSQL is only queried here.
const block = (ms: number) => { const until = performance.now() + ms; while (performance.now() < until); }

t.test('a waiter whose connection came back while the loop was blocked gets it, not an acquire timeout', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, min: 1, max: 1, acquireTimeoutMs: 100 })
  await app.db.query('SELECT 1')
  for (let round = 0; round < 5; round++) {
    // the one connection runs a short query; a second query waits for it
    const holder = app.db.query('SELECT pg_sleep(0.02)')
    const waiter = app.db.query<{ n: number }>('SELECT $1::int AS n', [round])
      .then((r) => r.rows[0]!.n, (err: Error & { code?: string }) => err.code ?? err.message)
    // both are queued; then the loop is blocked past the waiter's deadline,
    // while the first query's result arrives in the socket
    await new Promise((resolve) => setImmediate(resolve))
    block(300)
    await holder
    t.equal(await waiter, round, `round ${round}: the waiter got the connection`)
  }
})
