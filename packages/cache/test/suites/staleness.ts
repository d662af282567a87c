import type { Test } from 'tap'
import { errors } from '../../src/index.js'
import { sleep } from '@headroom/testing'
import { buildApp, engineOf, metricValue } from '../helpers.js'
import type { Backend } from '../backends.js'

export function staleness (t: Test, backend: Backend): void {
  async function appWithClock (t: Parameters<typeof buildApp>[0], policy: Record<string, number>) {
    const clock = { now: 1_000_000 }
    const r = await backend.connect(t)
    const app = await buildApp(t, {
      redis: await r.client(),
      prefix: r.prefix,
      now: () => clock.now,
      l1: { maxTtl: 3_600_000 },
      namespaces: { quotes: policy }
    })
    const ns = app.cache.ns('quotes') as import('../../src/index.js').Namespace
    return { clock, app, ns, r }
  }

  t.test('a factory that throws after the entry went stale: stale within the grace period, the error after it', async (t) => {
    const { clock, app, ns } = await appWithClock(t, { ttl: 1000, staleIfError: 5000 })
    t.same(await ns.wrap('ACME', () => ({ price: 10 })), { price: 10 })
    clock.now += 1500
    let calls = 0
    const failing = async (): Promise<{ price: number }> => { calls++; throw new Error('quote feed down') }
    t.same(await ns.wrap('ACME', failing), { price: 10 }, 'stale value inside the grace period')
    clock.now += 3000
    t.same(await ns.wrap('ACME', failing), { price: 10 }, 'still inside')
    clock.now += 1500
    await t.rejects(ns.wrap('ACME', failing), { message: 'quote feed down' }, 'the error once the grace period is over')
    t.equal(calls, 3, 'the factory was tried every time')
    t.equal(await metricValue(app, 'headroom_cache_stale_served_total', { reason: 'error' }), 2)
    t.same(await ns.wrap('ACME', () => ({ price: 11 })), { price: 11 }, 'errors were never cached')
  })

  t.test('stale-if-error also covers entries only L2 still has', async (t) => {
    const { clock, app, ns } = await appWithClock(t, { ttl: 1000, staleIfError: 5000 })
    await ns.wrap('ACME', () => 10)
    engineOf(app).l1.clear()
    clock.now += 2000
    t.equal(await ns.wrap('ACME', () => { throw new Error('down') }), 10)
  })

  t.test('stale-while-revalidate serves the stale value and refreshes once in the background', async (t) => {
    const { clock, app, ns } = await appWithClock(t, { ttl: 1000, staleWhileRevalidate: 10_000 })
    await ns.wrap('k', () => 'v1')
    clock.now += 2000
    let calls = 0
    const refresh = async () => { calls++; await sleep(30); return 'v2' }
    const answers = await Promise.all(Array.from({ length: 50 }, () => ns.wrap('k', refresh)))
    t.ok(answers.every((a) => a === 'v1'), 'stale answers, no waiting')
    await sleep(80)
    t.equal(calls, 1, 'one background refresh')
    t.equal(await ns.wrap('k', refresh), 'v2')
    t.equal(await metricValue(app, 'headroom_cache_stale_served_total', { reason: 'revalidate' }), 50)
  })

  t.test('soft timeout: a slow factory with a stale value answers stale and stores the result later', async (t) => {
    const { clock, ns } = await appWithClock(t, { ttl: 1000, staleIfError: 60_000, timeout: 50, hardTimeout: 2000 })
    await ns.wrap('k', () => 'old')
    clock.now += 2000
    const started = Date.now()
    t.equal(await ns.wrap('k', async () => { await sleep(1500); return 'new' }), 'old')
    // bounds with room for a loaded machine: answered long before the factory ended
    t.ok(Date.now() - started < 1000, `answered at the soft timeout (${Date.now() - started} ms, factory 1500 ms)`)
    await sleep(1700 - (Date.now() - started))
    t.equal(await ns.wrap('k', () => 'unused'), 'new', 'the slow result was stored')
  })

  t.test('hard timeout: the factory is abandoned, its signal aborted, and nothing is cached', async (t) => {
    const { ns } = await appWithClock(t, { ttl: 1000, hardTimeout: 100 })
    let aborted = false
    const started = Date.now()
    await t.rejects(ns.wrap('k', async ({ signal }) => {
      signal.addEventListener('abort', () => { aborted = true })
      await sleep(1500)
      return 'late'
    }), errors.FactoryTimeout)
    t.ok(Date.now() - started < 1000, `abandoned at the hard timeout (${Date.now() - started} ms, factory 1500 ms)`)
    t.ok(aborted)
    await sleep(1700 - (Date.now() - started))
    t.equal(await ns.get('k'), undefined, 'the late result is not stored')
    t.equal(await ns.wrap('k', () => 'next'), 'next')
  })

  t.test('hard timeout after the entry went stale: the stale value within the grace period', async (t) => {
    const { clock, ns } = await appWithClock(t, { ttl: 1000, staleIfError: 5000, hardTimeout: 50 })
    await ns.wrap('k', () => 'old')
    clock.now += 2000
    t.equal(await ns.wrap('k', () => sleep(200).then(() => 'new')), 'old')
  })

  t.test('L1 is backfilled with L2\'s remaining TTL, and both tiers return the same types', async (t) => {
    const { clock, app, ns } = await appWithClock(t, { ttl: 10_000 })
    const value = { at: new Date(0), n: 1, nested: { list: [1, 'a', null] }, missing: undefined }
    const fromFactory = await ns.wrap('k', () => value)
    engineOf(app).l1.clear()
    clock.now += 6000
    const fromL2 = await ns.wrap<typeof fromFactory>('k', () => { throw new Error('not called') })
    const fromL1 = await ns.wrap<typeof fromFactory>('k', () => { throw new Error('not called') })
    t.same(fromFactory, { at: '1970-01-01T00:00:00.000Z', n: 1, nested: { list: [1, 'a', null] } })
    t.same(fromL2, fromFactory)
    t.same(fromL1, fromFactory)
    t.equal(typeof fromL1.at, typeof fromL2.at)
    const entry = engineOf(app).l1.get('quotes|s|k', clock.now)!
    t.equal(entry.l1Until, 1_000_000 + 10_000, 'L1 keeps it for the 4 s L2 had left, not a fresh 10 s')
    clock.now += 4000
    t.equal(engineOf(app).l1.get('quotes|s|k', clock.now), undefined)
  })

  t.test('a factory error is never cached', async (t) => {
    const { ns } = await appWithClock(t, { ttl: 1000 })
    await t.rejects(ns.wrap('k', () => { throw new Error('boom') }))
    t.equal(await ns.get('k'), undefined)
    t.equal(await ns.wrap('k', () => 'ok'), 'ok')
  })
}
