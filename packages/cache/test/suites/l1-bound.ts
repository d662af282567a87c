import type { Test } from 'tap'
import { buildApp, engineOf, metricValue } from '../helpers.js'
import { mulberry32 } from '../prng.js'
import type { Backend } from '../backends.js'

export function l1Bound (t: Test, backend: Backend): void {
  t.test('L1 never exceeds its byte bound while filling with values of random sizes', async (t) => {
    const r = await backend.connect(t)
    const maxBytes = 256 * 1024
    const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix, l1: { maxBytes, maxEntries: 100_000, maxEntryBytes: 64 * 1024 } })
    const engine = engineOf(app)
    const rnd = mulberry32(1)
    let peak = 0
    let skipped = 0
    for (let i = 0; i < 3000; i++) {
      const key = `k${Math.floor(rnd() * 2000)}`
      // sizes from a few bytes to past the per-entry bound, multi-byte characters included
      const length = Math.floor(rnd() ** 3 * 80_000)
      const value = { s: (rnd() < 0.5 ? 'x' : 'é').repeat(length) }
      if (rnd() < 0.5) await app.cache.set(key, value)
      else await app.cache.wrap(`w${key}`, () => value)
      // what L1 holds, measured independently of its own accounting
      let held = 0
      for (const k of engine.l1.keys()) {
        const entry = engine.l1.get(k, Date.now())
        if (entry) held += Buffer.byteLength(entry.raw)
      }
      if (Buffer.byteLength(JSON.stringify(value)) > 64 * 1024) skipped++
      peak = Math.max(peak, held)
      if (held > maxBytes) {
        t.fail(`L1 holds ${held} bytes > ${maxBytes} after ${i + 1} writes`)
        return
      }
      if (i % 500 === 0) t.equal(engine.l1.bytes, held, 'its own accounting agrees')
    }
    t.ok(peak > maxBytes * 0.8, `filled up to ${peak} of ${maxBytes} bytes`)
    t.ok(skipped > 0, `${skipped} values above maxEntryBytes stayed out of L1`)
    t.equal(await metricValue(app, 'headroom_cache_l1_bytes'), engine.l1.bytes, 'the gauge reports it')
    t.ok(engine.l1.bytes <= maxBytes)
  })

  t.test('L1 never exceeds its entry bound', async (t) => {
    const app = await buildApp(t, { l1: { maxEntries: 100 } })
    for (let i = 0; i < 1000; i++) await app.cache.set(`k${i}`, i)
    t.equal(engineOf(app).l1.entries, 100)
    t.equal(app.cache.stats().l1.entries, 100)
    t.equal(await app.cache.get('k999'), 999, 'the newest stay')
    t.equal(await app.cache.get('k0'), undefined, 'the oldest went (no L2 here)')
  })
}
