// Type tests: see packages/session/test/types/session.test-d.ts.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import headroomRateLimit, { type RateLimitHandle } from '@headroom/ratelimit'

const app = Fastify()
await app.register(headroomRateLimit, {
  identify: (request) => request.ip,
  policies: { login: { limit: 5, window: '1m', hook: 'preHandler', key: (_request, client) => client } }
})

expectTypeOf(app.headroomRateLimit).toEqualTypeOf<RateLimitHandle>()

// the route's config.rateLimit, as @fastify/rate-limit spells it
app.get('/a', { config: { rateLimit: { groupId: 'login' } } }, async () => null)
app.get('/b', { config: { rateLimit: { max: 20, timeWindow: '15m' } } }, async () => null)
app.get('/c', { config: { rateLimit: false } }, async () => null)
// @ts-expect-error max is a number: a shared limit cannot vary per request
app.get('/d', { config: { rateLimit: { max: () => 20 } } }, async () => null)
// (an unknown key such as `ban` is not a compile error: Fastify infers a
// route's config type from the literal; it fails at route registration)

// @ts-expect-error limit is a number
await app.register(headroomRateLimit, { limit: '500' })
// @ts-expect-error onStoreDown is 'local', 'open' or 'closed'
await app.register(headroomRateLimit, { onStoreDown: 'fail' })
// @ts-expect-error an unknown option is a compile error too
await app.register(headroomRateLimit, { max: 500 })
