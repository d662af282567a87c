import t from 'tap'
import type { Namespace } from '../src/index.js'
import { standalone } from './backends.js'
import { buildApp } from './helpers.js'
import { sleep } from '@headroom/testing'

// What a client sees of the cache's errors through Fastify's default error handler: a code, a
// message and Retry-After on the 503; a cache key a request makes invalid is not an error at all.
t.test('a factory past its hard timeout: 503 + Retry-After with the code and nothing else', async (t) => {
  const r = await standalone.connect(t)
  const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix, namespaces: { slow: { hardTimeout: 100 } } }, (app) => {
    app.get('/slow', async () => (app.cache.ns('slow') as Namespace).wrap('k', async () => {
      await sleep(1000)
      return 'never'
    }))
  })
  const res = await app.inject('/slow')
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.same(res.json(), { statusCode: 503, code: 'HEADROOM_CACHE_FACTORY_TIMEOUT', error: 'Service Unavailable', message: 'The cache factory did not finish within its hard timeout of 100 ms' })
})

t.test('a per-user route whose user or key is invalid for the cache answers uncached, not a 500', async (t) => {
  const r = await standalone.connect(t)
  let calls = 0
  const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix }, (app) => {
    app.get('/me', { config: { cache: { user: (req) => req.headers['x-user'] as string | undefined } } }, async () => ({ n: ++calls }))
    app.get('/tagged', { config: { cache: { tags: (req) => [String(req.query && (req.query as { tag?: string }).tag)] } } }, async () => ({ n: ++calls }))
  })
  for (const res of [
    await app.inject({ url: '/me', headers: { 'x-user': 'u'.repeat(300) } }),
    await app.inject({ url: '/me', headers: { 'x-user': 'u'.repeat(300) } }),
    await app.inject(`/tagged?tag=${'t'.repeat(300)}`)
  ]) {
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-cache'], undefined, 'not cached')
  }
  t.equal(calls, 3, 'each ran the handler')
  t.equal((await app.inject({ url: '/me', headers: { 'x-user': 'alice' } })).headers['x-cache'], 'miss', 'a valid user is cached as before')
})
