import t from 'tap'
import { setImmediate as tick } from 'node:timers/promises'
import { Coherence, deal, idealReads, zipfTrace } from '../bench/trace.js'

// the helpers of bench/zipf.bench.ts: what they get wrong, the benchmark reports wrong

t.test('deal: every request once, round robin, started in trace order', async (t) => {
  const started: number[] = []
  const ran: Array<[number, number]> = []
  await deal(100, 3, 4, async (i, instance) => {
    await tick()
    ran.push([i, instance])
  }, (i) => started.push(i))
  t.same(started, Array.from({ length: 100 }, (_, i) => i))
  t.equal(ran.length, 100)
  t.same(ran.map(([i]) => i).sort((a, b) => a - b), started)
  for (const [i, instance] of ran) t.equal(instance, i % 3, `request ${i} on instance ${i % 3}`)
})

t.test('deal: real concurrency, never more than perInstance in flight on an instance', async (t) => {
  const inFlight = [0, 0, 0]
  const peak = [0, 0, 0]
  await deal(300, 3, 5, async (i, instance) => {
    inFlight[instance]!++
    peak[instance] = Math.max(peak[instance]!, inFlight[instance]!)
    // uneven durations, so instances free their slots out of order
    for (let k = 0; k < 1 + (i * 7) % 5; k++) await tick()
    inFlight[instance]!--
  })
  t.same(peak, [5, 5, 5])
})

t.test('deal: a request waits for its own instance, not for another instance\'s slot', async (t) => {
  const release: Array<() => void> = []
  const started: number[] = []
  // instance 0's first request never ends until released; instance 1 keeps going meanwhile
  const done = deal(6, 2, 1, (i) => i === 0 ? new Promise<void>((resolve) => release.push(resolve)) : tick().then(() => {}), (i) => started.push(i))
  for (let k = 0; k < 10; k++) await tick()
  t.same(started, [0, 1], 'request 2 (instance 0) waits for request 0; request 3 does not start before it')
  release[0]!()
  await done
  t.same(started, [0, 1, 2, 3, 4, 5])
})

t.test('deal: rejects with a request\'s error after the others settle', async (t) => {
  let settled = 0
  await t.rejects(deal(50, 2, 3, async (i) => {
    await tick()
    settled++
    if (i === 10) throw new Error('boom')
  }), { message: 'boom' })
  t.ok(settled <= 50 && settled > 10)
  await t.rejects(deal(1, 0, 1, async () => {}), RangeError)
})

t.test('Coherence: only a read older than a write completed before it began is a violation', async (t) => {
  const c = new Coherence()
  t.ok(c.end(c.begin(1, 0), 0), 'no write yet: version 0 is fine')
  c.wrote(1, 1, 10)
  const during = c.begin(2, 11)
  c.wrote(2, 1, 12)
  t.ok(c.end(during, 0), 'a write still in flight when the read began may be missed')
  const after = c.begin(1, 15)
  t.equal(after.floor, 1)
  t.equal(after.since, 5)
  t.ok(c.end(after, 1))
  t.ok(c.end(after, 2), 'a newer version than required is fine')
  t.equal(c.violations, 0)
  c.wrote(1, 3, 20)
  c.wrote(1, 2, 21) // an older write completing late does not lower the floor
  t.notOk(c.end(c.begin(1, 50), 1), 'two versions behind a write completed 30 ms before')
  t.notOk(c.end(c.begin(1, 22), 2))
  t.equal(c.violations, 2)
  t.equal(c.worstVersions, 2)
  t.equal(c.worstSince, 30)
  t.ok(c.end(c.begin(3, 60), 0), 'keys are independent')
})

t.test('zipfTrace is deterministic and skewed; idealReads counts first reads, expiries and writes', async (t) => {
  const a = zipfTrace(20_000, 7, 1000, 0.05)
  t.same(zipfTrace(20_000, 7, 1000, 0.05), a)
  const top = a.keys.filter((k) => k === 1).length
  const mid = a.keys.filter((k) => k === 500).length
  t.ok(top > 50 * Math.max(1, mid), `rank 1 (${top}) far above rank 500 (${mid})`)
  const writes = a.writes.reduce((n, w) => n + w, 0)
  t.ok(writes > 800 && writes < 1200, `${writes} writes of 20,000`)

  // key 1 read at 0 ms, 1 ms, written at 2 ms, read at 3 ms, 4 ms (1000 requests/s), expired by 10 ms
  const trace = { keys: Int32Array.from([1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 1]), writes: Uint8Array.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]) }
  t.equal(idealReads(trace, 5, 1000), 1 + 1 + 1 + 1 + 1, 'key 1: first read, after the write, after expiry at 8 ms; key 2: first read, after expiry at 10 ms')
  t.equal(idealReads(trace, 100, 1000), 3, 'a long TTL: first reads and the read after the write only')
})
