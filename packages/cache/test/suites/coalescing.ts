import type { Test } from 'tap'
import { sleep } from '@headroom/testing'
import { buildApp, metricValue } from '../helpers.js'
import type { Backend } from '../backends.js'

export function coalescing (t: Test, backend: Backend): void {
  t.test('1,000 concurrent wraps of a cold key run the factory once', async (t) => {
    const r = await backend.connect(t)
    const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix })
    let calls = 0
    const factory = async () => { calls++; await sleep(30); return { price: 42 } }
    const results = await Promise.all(Array.from({ length: 1000 }, () => app.cache.wrap('cold', factory)))
    t.equal(calls, 1)
    t.ok(results.every((v) => v.price === 42))
    t.not(results[0], results[1], 'every caller gets its own copy')
    t.equal(await metricValue(app, 'headroom_cache_coalesced_waits_total', { scope: 'process' }), 999)
  })

  t.test('with the cross-instance lease, 1,000 wraps over three instances run the factory once in total', async (t) => {
    const r = await backend.connect(t)
    const apps = await Promise.all([1, 2, 3].map(async () => buildApp(t, {
      redis: await r.client(),
      prefix: r.prefix,
      // a command timeout a loaded machine cannot reach: a lease call that times out
      // falls back to per-process coalescing, which is another test's subject
      commandTimeoutMs: 2000,
      namespaces: { insights: { ttl: 60_000, lease: true } }
    })))
    let calls = 0
    const factory = async () => { calls++; await sleep(100); return { insight: 'spend less on coffee' } }
    const started = Date.now()
    const results = await Promise.all(Array.from({ length: 1000 }, (_v, i) => {
      const ns = apps[i % 3]!.cache.ns('insights')
      if (ns.perUser) throw new Error('unexpected')
      return ns.wrap('user-7:monthly', factory)
    }))
    t.equal(calls, 1, 'one factory call across three instances')
    t.ok(results.every((v) => v.insight === 'spend less on coffee'))
    // waiters were woken by the holder's message, not by the lease expiry (hardTimeout 10 s)
    t.ok(Date.now() - started < 5000, `done in ${Date.now() - started} ms`)
    let cluster = 0
    for (const app of apps) cluster += await metricValue(app, 'headroom_cache_coalesced_waits_total', { scope: 'cluster' })
    t.equal(cluster, 2, 'the two other instances waited on the lease')
  })

  t.test('a lease holder that fails wakes the waiters, and one of them takes over', async (t) => {
    const r = await backend.connect(t)
    const apps = await Promise.all([1, 2].map(async () => buildApp(t, {
      redis: await r.client(), prefix: r.prefix, commandTimeoutMs: 2000, namespaces: { insights: { lease: true } }
    })))
    let calls = 0
    let holding: () => void = () => {}
    const held = new Promise<void>((resolve) => { holding = resolve })
    const factory = async () => {
      calls++
      if (calls === 1) holding()
      await sleep(50)
      if (calls === 1) throw new Error('model overloaded')
      return 'ok'
    }
    const ns = (i: number) => apps[i]!.cache.ns('insights') as import('../../src/index.js').Namespace
    const first = ns(0).wrap('k', factory)
    // the first instance holds the lease (its factory runs) before the second asks
    await held
    const second = ns(1).wrap('k', factory)
    await t.rejects(first, { message: 'model overloaded' })
    t.equal(await second, 'ok')
    t.equal(calls, 2)
  })

  t.test('Redis down: the lease falls back to per-process coalescing', async (t) => {
    const redis = await backend.killable(t)
    const client = await redis.client()
    const app = await buildApp(t, { redis: client, namespaces: { insights: { lease: true } } })
    await redis.kill()
    let calls = 0
    const factory = async () => { calls++; await sleep(20); return 1 }
    const ns = app.cache.ns('insights') as import('../../src/index.js').Namespace
    const started = Date.now()
    const results = await Promise.all(Array.from({ length: 200 }, () => ns.wrap('k', factory)))
    t.equal(calls, 1)
    t.ok(results.every((v) => v === 1))
    t.ok(Date.now() - started < 1000)
  })
}
