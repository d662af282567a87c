// Type tests: see packages/session/test/types/session.test-d.ts.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import headroomHealth, { type HealthControl } from '@headroom/health'

const app = Fastify()
await app.register(headroomHealth, {
  checks: [{ name: 'payments:reachable', critical: false, check: async () => ({ status: 'pass' }) }],
  pressure: { maxInFlight: 100 },
  metrics: false
})

expectTypeOf(app.health).toEqualTypeOf<HealthControl>()
expectTypeOf(app.health.draining).toEqualTypeOf<boolean>()

// @ts-expect-error a check's status is 'pass', 'warn' or 'fail'
await app.register(headroomHealth, { checks: [{ name: 'a:b', check: async () => ({ status: 'ok' }) }] })
// @ts-expect-error pressure is an object or false
await app.register(headroomHealth, { pressure: true })
// @ts-expect-error an unknown option is a compile error too
await app.register(headroomHealth, { readinesPath: '/ready' })
