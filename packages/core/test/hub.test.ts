import t from 'tap'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import { errors, getHub, metric } from '../src/index.js'
import { testApp } from '@headroom/testing'

const contributes = (name: string): FastifyPluginAsync => fp(async (fastify) => {
  getHub(fastify).addCheck({ name, check: async () => ({ status: 'pass' }) })
}, { name: `contributor-${name}` })

const readsPlugin: FastifyPluginAsync<{ seen: string[][] }> = async (fastify, opts) => {
  const hub = getHub(fastify)
  fastify.addHook('onReady', async () => { opts.seen.push(hub.checks().map((c) => c.name)) })
}
const reads = fp(readsPlugin, { name: 'reader' })

t.test('plugins registered in any order share one hub and see every check', async (t) => {
  for (const order of [['a', 'reader', 'b'], ['reader', 'a', 'b'], ['a', 'b', 'reader']]) {
    const app = testApp(t)
    const seen: string[][] = []
    for (const item of order) await app.register(item === 'reader' ? reads : contributes(item), { seen })
    await app.ready()
    t.same(seen[0]?.sort(), ['a', 'b'], `order ${order.join(',')}`)
  }
})

t.test('two apps in one process have separate registries and checks', async (t) => {
  const one = testApp(t)
  const two = testApp(t)
  await one.register(contributes('x'))
  await two.register(contributes('x'))
  await Promise.all([one.ready(), two.ready()])
  t.not(getHub(one).registry, getHub(two).registry)
  const c1 = metric(getHub(one).registry, 'things_total', (registers) => new Counter({ name: 'things_total', help: 'h', registers }))
  const c2 = metric(getHub(two).registry, 'things_total', (registers) => new Counter({ name: 'things_total', help: 'h', registers }))
  t.not(c1, c2, 'no clash on the same metric name across apps')
  t.equal(metric(getHub(one).registry, 'things_total', () => { throw new Error('not called') }), c1, 'the same app gets the existing metric')
})

t.test('a duplicate check name is refused with a coded error', async (t) => {
  const app = testApp(t)
  await app.register(contributes('dup'))
  await app.ready()
  t.throws(() => getHub(app).addCheck({ name: 'dup', check: async () => ({ status: 'pass' }) }), errors.DuplicateCheck)
  try {
    getHub(app).addCheck({ name: 'dup', check: async () => ({ status: 'pass' }) })
  } catch (err) {
    t.equal((err as { code: string }).code, 'HEADROOM_CORE_DUPLICATE_CHECK')
  }
})

t.test('the hub is the app\'s, not the context\'s: encapsulated contributors and readers share it', async (t) => {
  for (const layout of ['contributor in a child first', 'reader in a child first', 'both in children', 'nested three deep']) {
    const app = testApp(t)
    const seen: string[][] = []
    const child = (p: FastifyPluginAsync<{ seen: string[][] }>, depth = 1): FastifyPluginAsync => async (c) => {
      if (depth > 1) await c.register(child(p, depth - 1))
      else await c.register(p, { seen })
    }
    if (layout === 'contributor in a child first') {
      await app.register(child(contributes('a')))
      await app.register(reads, { seen })
    } else if (layout === 'reader in a child first') {
      await app.register(child(reads))
      await app.register(contributes('a'))
    } else if (layout === 'both in children') {
      await app.register(child(contributes('a')))
      await app.register(child(reads))
    } else {
      await app.register(child(contributes('a'), 3))
      await app.register(child(reads, 3))
    }
    await app.ready()
    t.same(seen[0], ['a'], layout)
  }
})
