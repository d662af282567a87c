import t from 'tap'
import { PermitQueue } from '../src/permits.js'

/** what `p` rejects with (fails the test if it resolves) */
async function rejection (p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('resolved, expected a rejection')
}

const block = (ms: number) => { const until = performance.now() + ms; while (performance.now() < until); }

// the queue's timer is unref()ed (in an app the server keeps the process up): a ref'd one does here
const keepAlive = setInterval(() => {}, 1000)
t.teardown(() => clearInterval(keepAlive))

class Exhausted extends Error {}
class Expired extends Error {}
class Closed extends Error {}

function queue (permits: number, maxWaiting: number, timeoutMs: number) {
  return new PermitQueue(permits, {
    maxWaiting,
    timeoutMs,
    exhausted: (waiting) => new Exhausted(`${waiting} waiting`),
    expired: () => new Expired('expired')
  })
}

t.test('permits are taken without a promise; then callers wait, and a release goes to the oldest waiter', async (t) => {
  const q = queue(2, 10, 10_000)
  t.ok(q.tryTake())
  t.ok(q.tryTake())
  t.notOk(q.tryTake(), 'no third permit')
  const order: number[] = []
  const a = q.wait().then(() => order.push(1))
  const b = q.wait().then(() => order.push(2))
  t.equal(q.waiting, 2)
  q.release()
  await a
  t.same(order, [1], 'the oldest waiter first, and only one per release')
  t.equal(q.waiting, 1)
  q.release()
  await b
  t.same(order, [1, 2])
  q.release()
  t.ok(q.tryTake(), 'with nobody waiting, a release frees a permit')
  q.close(() => new Closed())
})

t.test('beyond maxWaiting a caller fails at once with the exhausted error', async (t) => {
  const q = queue(0, 2, 10_000)
  const waiting = [q.wait(), q.wait()]
  for (const w of waiting) w.catch(() => {})
  const refused = await rejection(q.wait())
  t.ok(refused instanceof Exhausted, 'the exhausted error')
  t.equal((refused as Error).message, '2 waiting')
  t.equal(q.waiting, 2, 'the refused ones never queued')
  q.close(() => new Closed())
  for (const w of waiting) t.ok(await rejection(w) instanceof Closed, 'close fails every waiter')
})

t.test('a waiter fails with the expired error after timeoutMs, in order, and later ones keep their own deadline', async (t) => {
  const q = queue(0, 10, 50)
  const started = performance.now()
  const first = q.wait()
  await new Promise((resolve) => setTimeout(resolve, 30))
  const second = q.wait()
  t.ok(await rejection(first) instanceof Expired)
  const firstMs = performance.now() - started
  t.ok(firstMs >= 49, `not before its deadline (${firstMs.toFixed(0)} ms)`)
  t.equal(q.waiting, 1, 'the later waiter is still waiting after the first expired')
  t.ok(await rejection(second) instanceof Expired)
  t.ok(performance.now() - started >= 79, 'the second expires at its own deadline')
  t.equal(q.waiting, 0)
})

// Busy is not down: a release that comes in the same timer pass as the
// expiry (the loop was blocked past the deadline) wins. Without the expiry's
// wait for an I/O pass the waiter would fail although a permit came back.
t.test('a permit released in the same pass as the deadline goes to the waiter, not an expiry', async (t) => {
  const q = queue(0, 10, 20)
  const waiter = q.wait().then(() => 'got it', (err: Error) => err.message)
  setTimeout(() => q.release(), 20)
  block(60)
  t.equal(await waiter, 'got it')
})
