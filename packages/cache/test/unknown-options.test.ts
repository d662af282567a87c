import t from 'tap'
import Fastify from 'fastify'
import { headroomCache, errors, normalizeOptions, type CacheOptions } from '../src/index.js'

const BASE = {}
/** every option, so the compiler fails this file when one is added without this test knowing */
const ALL: { [K in keyof Required<CacheOptions>]: undefined } = {
  redis: undefined,
  prefix: undefined,
  defaults: undefined,
  namespaces: undefined,
  l1: undefined,
  commandTimeoutMs: undefined,
  failureThreshold: undefined,
  resetTimeoutMs: undefined,
  replayLimit: undefined,
  waitForReplicas: undefined,
  now: undefined,
  decorator: undefined
}

// a typo must fail at registration, naming the key and the option it is a
// typo of, instead of the default being used silently
const cases: Array<[Record<string, unknown>, RegExp]> = [
  [{ namespace: {} }, /"namespace":? is unknown; did you mean "namespaces"\?/],
  [{ ttl: 1000 }, /"ttl":? is unknown; a TTL belongs to a policy/],
  [{ defaults: { tll: 1000 } }, /"defaults\.tll":? is unknown; did you mean "ttl"\?/],
  [{ namespaces: { quotes: { staleIfErorr: 1000 } } }, /"namespaces\.quotes\.staleIfErorr":? is unknown; did you mean "staleIfError"\?/],
  [{ l1: { maxByte: 10 } }, /"l1\.maxByte":? is unknown; did you mean "maxBytes"\?/],
  [{ decorater: 'c' }, /"decorater":? is unknown; did you mean "decorator"\?/]
]

t.test('an unknown option fails at register with a hint', async (t) => {
  for (const [opts, message] of cases) {
    t.throws(() => normalizeOptions({ ...BASE, ...opts } as never), { code: 'HEADROOM_CACHE_INVALID_OPTION', message }, String(message))
  }
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(headroomCache, { ...BASE, ...cases[0]![0] } as never)
  await t.rejects(async () => { await app.ready() }, errors.InvalidOption)
})

t.test('every documented option is known', async (t) => {
  t.doesNotThrow(() => normalizeOptions({ ...ALL, ...BASE } as never))
})
