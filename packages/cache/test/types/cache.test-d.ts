// Type tests: see packages/session/test/types/session.test-d.ts.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import headroomCache, { type Cache, type Namespace, type UserNamespace, type UserScope } from '@headroom/cache'

declare module '@headroom/cache' {
  interface CacheNamespaces {
    quotes: { perUser: false }
    summary: { perUser: true }
  }
}

const app = Fastify()
await app.register(headroomCache, { namespaces: { quotes: { ttl: 5000 }, summary: { perUser: true } }, l1: { maxBytes: 1e6 } })

expectTypeOf(app.cache).toEqualTypeOf<Cache>()
expectTypeOf(app.cache.wrap('k', async () => 1)).toEqualTypeOf<Promise<number>>()
expectTypeOf(app.cache.ns('quotes')).toEqualTypeOf<Namespace>()
expectTypeOf(app.cache.ns('summary')).toEqualTypeOf<UserNamespace>()
expectTypeOf(app.cache.ns('summary').forUser('u1')).toEqualTypeOf<UserScope>()
// @ts-expect-error a per-user namespace has no wrap of its own: the user is part of every key
app.cache.ns('summary').wrap('k', async () => 1)

app.get('/a', { config: { cache: true } }, async () => null)
app.get('/b', { config: { cache: { user: (request) => request.ip, tags: () => ['t'] } } }, async () => null)
// @ts-expect-error route tags are a function of the request
app.get('/c', { config: { cache: { tags: ['t'] } } }, async () => null)

// @ts-expect-error ttl is a number of milliseconds
await app.register(headroomCache, { defaults: { ttl: '1m' } })
// @ts-expect-error decorator is a name
await app.register(headroomCache, { decorator: 1 })
// @ts-expect-error an unknown option is a compile error too
await app.register(headroomCache, { namespace: {} })
