import type { Test } from 'tap'
import { buildApp } from '../helpers.js'
import type { Backend } from '../backends.js'
import { sleep } from '@headroom/testing'

export function httpCache (t: Test, backend: Backend): void {
  async function app (t: Parameters<typeof buildApp>[0]) {
    const r = await backend.connect(t)
    let calls = 0
    const server = await buildApp(t, { redis: await r.client(), prefix: r.prefix }, (app) => {
      app.get('/quotes/:sym', { config: { cache: true } }, async (request) => {
        calls++
        return { sym: (request.params as { sym: string }).sym, price: 10 }
      })
      app.get('/me/summary', { config: { cache: { user: (req) => req.headers['x-user'] as string | undefined } } }, async (request) => {
        calls++
        return { user: request.headers['x-user'], total: 5 }
      })
      app.get('/with-cookie', { config: { cache: true } }, async (_request, reply) => {
        calls++
        reply.header('set-cookie', 'sid=abc; HttpOnly')
        return { n: calls }
      })
      app.get<{ Querystring: { status?: string } }>('/flaky', { config: { cache: true } }, async (request, reply) => {
        calls++
        reply.code(Number(request.query.status ?? 200))
        return { n: calls }
      })
      app.get('/boom', { config: { cache: true } }, async () => {
        calls++
        throw new Error('db down')
      })
    })
    return { server, calls: () => calls }
  }

  t.test('a cached route stores the serialized response and answers hits from it with its ETag', async (t) => {
    const { server, calls } = await app(t)
    const first = await server.inject('/quotes/ACME')
    t.equal(first.statusCode, 200)
    t.equal(first.headers['x-cache'], 'miss')
    const etag = first.headers.etag as string
    t.match(etag, /^"[\w-]+"$/)
    t.match(first.headers['cache-control'], /^public, max-age=60$/)
    const second = await server.inject('/quotes/ACME')
    t.equal(second.headers['x-cache'], 'hit')
    t.equal(second.body, first.body)
    t.equal(second.headers['content-type'], first.headers['content-type'])
    t.equal(second.headers.etag, etag, 'the ETag is the entry\'s version')
    t.equal(calls(), 1)
    const notModified = await server.inject({ url: '/quotes/ACME', headers: { 'if-none-match': `"nope", ${etag}` } })
    t.equal(notModified.statusCode, 304)
    t.equal(notModified.body, '')
    await server.cache.ns('http').delete('/quotes/ACME')
    const fresh = await server.inject({ url: '/quotes/ACME', headers: { 'if-none-match': etag } })
    t.equal(fresh.statusCode, 200, 'a new version after invalidation')
    t.not(fresh.headers.etag, etag)
  })

  t.test('per-user routes: user in the key, Cache-Control private, no response without a user cached', async (t) => {
    const { server, calls } = await app(t)
    const alice = await server.inject({ url: '/me/summary', headers: { 'x-user': 'alice' } })
    t.equal(alice.headers['cache-control'], 'private, no-cache')
    const bob = await server.inject({ url: '/me/summary', headers: { 'x-user': 'bob', 'if-none-match': alice.headers.etag as string } })
    t.equal(bob.statusCode, 200, 'alice\'s ETag means nothing for bob')
    t.same(bob.json(), { user: 'bob', total: 5 })
    const again = await server.inject({ url: '/me/summary', headers: { 'x-user': 'alice', 'if-none-match': alice.headers.etag as string } })
    t.equal(again.statusCode, 304)
    t.equal(again.headers['cache-control'], 'private, no-cache')
    t.equal(calls(), 2)
    await server.inject({ url: '/me/summary' })
    await server.inject({ url: '/me/summary' })
    t.equal(calls(), 4, 'anonymous requests are not cached')
    await server.cache.ns('http-user').forUser('alice').delete('/me/summary')
    t.equal((await server.inject({ url: '/me/summary', headers: { 'x-user': 'alice' } })).headers['x-cache'], 'miss')
  })

  t.test('responses that set cookies, are not 2xx or fail are never cached', async (t) => {
    const { server, calls } = await app(t)
    await server.inject('/with-cookie')
    const second = await server.inject('/with-cookie')
    t.equal(calls(), 2)
    t.equal(second.headers['x-cache'], undefined)
    t.ok(second.headers['set-cookie'])
    t.equal((await server.inject('/flaky?status=404')).statusCode, 404)
    t.equal((await server.inject('/flaky?status=404')).statusCode, 404)
    t.equal(calls(), 4, '404s are not cached')
    t.equal((await server.inject('/boom')).statusCode, 500)
    t.equal((await server.inject('/boom')).statusCode, 500)
    t.equal(calls(), 6, '5xx are not cached')
    t.equal((await server.inject('/flaky?status=201')).headers['x-cache'], 'miss')
    const cached = await server.inject('/flaky?status=201')
    t.equal(cached.statusCode, 201, 'a 2xx keeps its status')
    t.equal(cached.headers['x-cache'], 'hit')
  })

  t.test('a HEAD request on a cached route leaves the GET response whole', async (t) => {
    const { server } = await app(t)
    const head = await server.inject({ method: 'HEAD', url: '/quotes/HEADY' })
    t.equal(head.statusCode, 200)
    const get = await server.inject('/quotes/HEADY')
    t.same(get.json(), { sym: 'HEADY', price: 10 })
    t.same((await server.inject('/quotes/HEADY')).json(), { sym: 'HEADY', price: 10 })
  })

  t.test('a route response cached by one instance is served by another', async (t) => {
    const r = await backend.connect(t)
    const build = async () => buildApp(t, { redis: await r.client(), prefix: r.prefix }, (app) => {
      app.get('/q', { config: { cache: true } }, async () => ({ at: Math.random() }))
    })
    const [a, b] = [await build(), await build()]
    const first = await a.inject('/q')
    await sleep(20)
    const second = await b.inject('/q')
    t.equal(second.body, first.body)
    t.equal(second.headers.etag, first.headers.etag)
  })

  t.test('caching a non-GET route fails at ready, naming the option', async (t) => {
    await t.rejects(buildApp(t, {}, (app) => {
      app.post('/x', { config: { cache: true } }, async () => 'x')
    }), { code: 'HEADROOM_CACHE_INVALID_OPTION', message: /config\.cache of POST \/x/ })
  })
}
