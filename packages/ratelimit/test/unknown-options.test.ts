import t from 'tap'
import Fastify from 'fastify'
import { headroomRateLimit, errors, normalizeOptions, type HeadroomRateLimitOptions } from '../src/index.js'

const BASE = {}
/** every option, so the compiler fails this file when one is added without this test knowing */
const ALL: { [K in keyof Required<HeadroomRateLimitOptions>]: undefined } = {
  limit: undefined,
  window: undefined,
  buckets: undefined,
  policies: undefined,
  identify: undefined,
  hook: undefined,
  ipv6Subnet: undefined,
  redis: undefined,
  prefix: undefined,
  onStoreDown: undefined,
  commandTimeoutMs: undefined,
  failureThreshold: undefined,
  resetTimeoutMs: undefined,
  localDivisor: undefined,
  localMaxKeys: undefined,
  localBlock: undefined,
  staticAssets: undefined,
  skipPaths: undefined,
  skipMethods: undefined,
  skip: undefined,
  headers: undefined,
  legacyHeaders: undefined
}

// a typo must fail at registration, naming the key and the option it is a
// typo of, instead of the default being used silently
const cases: Array<[Record<string, unknown>, RegExp]> = [
  [{ limt: 10 }, /"limt":? is unknown; did you mean "limit"\?/],
  [{ max: 10 }, /"max":? is unknown; the request count is `limit`/],
  [{ policies: { login: { limit: 5, window: '1m', max: 5 } } }, /"policies\.login\.max":? is unknown; the request count is `limit`/],
  [{ staticAssets: { prefix: ['/s/'] } }, /"staticAssets\.prefix":? is unknown; did you mean "prefixes"\?/],
  [{ localBlock: { maxkeys: 10 } }, /"localBlock\.maxkeys":? is unknown; did you mean "maxKeys"\?/]
]

t.test('an unknown option fails at register with a hint', async (t) => {
  for (const [opts, message] of cases) {
    t.throws(() => normalizeOptions({ ...BASE, ...opts } as never), { code: 'HEADROOM_RATELIMIT_INVALID_OPTION', message }, String(message))
  }
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(headroomRateLimit, { ...BASE, ...cases[0]![0] } as never)
  await t.rejects(async () => { await app.ready() }, errors.InvalidOption)
})

t.test('every documented option is known', async (t) => {
  t.doesNotThrow(() => normalizeOptions({ ...ALL, ...BASE } as never))
})
