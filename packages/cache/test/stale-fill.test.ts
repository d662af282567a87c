import t, { type Test } from 'tap'
import { sleep, waitFor } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import type { Namespace } from '../src/index.js'
import { buildApp, metricValue, redisClient } from './helpers.js'

/**
 * A stale fill: a read's value is produced from the database before a write,
 * the write's invalidation is processed (L2 delete, bus message), and only
 * then is the read's value stored. Nothing would drop it again, so it would
 * be served until its TTL (or l1.maxTtl), long after the bus delay. Each test
 * holds the producing read on a gate it opens only once the invalidation has
 * been processed everywhere, so the interleaving is the same on every run.
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

function gate (): { wait: Promise<void>, open: () => void } {
  let open!: () => void
  const wait = new Promise<void>((resolve) => { open = resolve })
  return { wait, open }
}

async function instance (t: Test, prefix: string, clock: { now: number }, setup?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  return buildApp(t, {
    redis: await redisClient(t, REDIS_URL),
    prefix,
    now: () => clock.now,
    // a soft timeout answers with the stale value while the factory keeps running
    namespaces: { quotes: { ttl: 1000, staleIfError: 60_000, timeout: 20 } }
  }, setup)
}

const quotes = (app: FastifyInstance): Namespace => app.cache.ns('quotes') as Namespace
const prefixOf = (name: string): string => `test-stale-fill-${name}-${process.pid}-${Date.now()}:`

/** v1 in L1 and L2, then expired (still within its grace period): the next read has a stale value to answer with. */
async function expiredV1 (t: Test, app: FastifyInstance, clock: { now: number }, state: { version: number }): Promise<void> {
  t.same(await quotes(app).wrap('k', () => ({ v: state.version })), { v: 1 })
  await sleep(50) // the background L2 write
  clock.now += 2000
}

/** A read that answers stale after the soft timeout, its factory having read `state.version` and now waiting on `held`. */
async function softTimedOut (t: Test, app: FastifyInstance, state: { version: number }, held: Promise<void>): Promise<void> {
  let started!: () => void
  const running = new Promise<void>((resolve) => { started = resolve })
  const answered = await quotes(app).wrap('k', async () => {
    const v = state.version
    started()
    await held
    return { v }
  })
  await running
  t.same(answered, { v: 1 }, 'the soft timeout answered with the stale value; the factory (which read v1) keeps running')
}

t.test('soft timeout: a factory still running when its own instance deletes the key does not fill L1 afterwards', async (t) => {
  const clock = { now: 1_000_000 }
  const state = { version: 1 }
  const app = await instance(t, prefixOf('local'), clock)
  await expiredV1(t, app, clock, state)
  const held = gate()
  await softTimedOut(t, app, state, held.wait)

  state.version = 2
  await quotes(app).delete('k') // the write completes
  held.open()
  await sleep(50) // the factory's result is handled
  t.same(await quotes(app).wrap('k', () => ({ v: state.version })), { v: 2 }, 'a read after the write sees v2, not the v1 the old factory produced')
})

t.test('soft timeout: a factory still running when another instance deletes the key does not fill L1 after the bus message', async (t) => {
  const clock = { now: 1_000_000 }
  const state = { version: 1 }
  const prefix = prefixOf('remote')
  const writer = await instance(t, prefix, clock)
  const reader = await instance(t, prefix, clock)
  await expiredV1(t, reader, clock, state)
  const held = gate()
  await softTimedOut(t, reader, state, held.wait)

  state.version = 2
  await quotes(writer).delete('k')
  await waitFor('the reader received the invalidation', async () => (await metricValue(reader, 'headroom_cache_invalidations_received_total')) >= 1, 10_000, 5)
  held.open()
  await sleep(50)
  t.same(await quotes(reader).wrap('k', () => ({ v: state.version })), { v: 2 }, 'a read on the reader after the bus message sees v2')
})

function route (state: { version: number }, held: { current: Promise<void> | undefined, started?: () => void }) {
  return (app: FastifyInstance): void => {
    app.get('/quote', { config: { cache: true } }, async () => {
      const v = state.version
      held.started?.()
      if (held.current) await held.current
      return { v }
    })
  }
}

for (const where of ['its own instance', 'another instance'] as const) {
  t.test(`route cache: a response produced before ${where} deletes the key is not stored in L1 afterwards`, async (t) => {
    const clock = { now: 1_000_000 }
    const state = { version: 1 }
    const prefix = prefixOf(`route-${where === 'its own instance' ? 'local' : 'remote'}`)
    const g = gate()
    const held: { current: Promise<void> | undefined, started?: () => void } = { current: g.wait }
    const reader = await buildApp(t, { redis: await redisClient(t, REDIS_URL), prefix, now: () => clock.now }, route(state, held))
    const writer = where === 'its own instance' ? reader : await buildApp(t, { redis: await redisClient(t, REDIS_URL), prefix, now: () => clock.now }, route(state, held))

    const running = new Promise<void>((resolve) => { held.started = resolve })
    const first = reader.inject('/quote')
    await running // the handler read v1
    held.started = undefined
    held.current = undefined
    state.version = 2
    await writer.cache.ns('http').delete('/quote')
    if (writer !== reader) {
      await waitFor('the reader received the invalidation', async () => (await metricValue(reader, 'headroom_cache_invalidations_received_total')) >= 1, 10_000, 5)
    }
    g.open()
    t.same((await first).json(), { v: 1 }, 'the request that began before the write answers v1 (allowed)')
    await sleep(50)
    t.same((await reader.inject('/quote')).json(), { v: 2 }, 'a request after the write gets v2, not the v1 stored after the invalidation')
  })
}
