import t from 'tap'
import Fastify from 'fastify'
import { headroomSession, errors, normalizeOptions, type SessionOptions } from '../src/index.js'

const BASE = {}
/** every option, so the compiler fails this file when one is added without this test knowing */
const ALL: { [K in keyof Required<SessionOptions>]: undefined } = {
  secret: undefined,
  redis: undefined,
  keyPrefix: undefined,
  cookieName: undefined,
  maxAge: undefined,
  cookie: undefined,
  touchAfter: undefined,
  maxSize: undefined,
  commandTimeoutMs: undefined,
  fallback: undefined,
  hot: undefined,
  probeIntervalMs: undefined,
  connectTimeoutMs: undefined,
  production: undefined
}

// a typo must fail at registration, naming the key and the option it is a
// typo of, instead of the default being used silently
const cases: Array<[Record<string, unknown>, RegExp]> = [
  [{ secrets: ['x'.repeat(32)] }, /"secrets":? is unknown; the signing secrets are `secret`/],
  [{ keyprefix: 'a:' }, /"keyprefix":? is unknown; did you mean "keyPrefix"\?/],
  [{ maxAgeMs: 1000 }, /"maxAgeMs":? is unknown; did you mean "maxAge"\?/],
  [{ cookie: { samesite: 'strict' } }, /"cookie\.samesite":? is unknown; did you mean "sameSite"\?/],
  [{ hot: { maxAge: 10 } }, /"hot\.maxAge":? is unknown; did you mean "maxAgeMs"\?/],
  [{ fallback: { maxx: 10 } }, /"fallback\.maxx":? is unknown; did you mean "max"\?/]
]

t.test('an unknown option fails at register with a hint', async (t) => {
  for (const [opts, message] of cases) {
    t.throws(() => normalizeOptions({ ...BASE, ...opts } as never), { code: 'HEADROOM_SESSION_INVALID_OPTION', message }, String(message))
  }
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(headroomSession, { ...BASE, ...cases[0]![0] } as never)
  await t.rejects(async () => { await app.ready() }, errors.InvalidOption)
})

t.test('every documented option is known', async (t) => {
  t.doesNotThrow(() => normalizeOptions({ ...ALL, ...BASE } as never))
})
