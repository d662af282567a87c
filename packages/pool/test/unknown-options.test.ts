import t from 'tap'
import Fastify from 'fastify'
import { headroomPool, errors, normalizeOptions, type PoolOptions } from '../src/index.js'

const BASE = { primary: 'postgres://postgres@127.0.0.1:5432/test' }
/** every option, so the compiler fails this file when one is added without this test knowing */
const ALL: { [K in keyof Required<PoolOptions>]: undefined } = {
  primary: undefined,
  replicas: undefined,
  min: undefined,
  max: undefined,
  replicaMin: undefined,
  replicaMax: undefined,
  acquireTimeoutMs: undefined,
  maxWaiting: undefined,
  retryAfterSeconds: undefined,
  statementTimeoutMs: undefined,
  idleInTransactionTimeoutMs: undefined,
  idleTimeoutMs: undefined,
  maxLifetimeMs: undefined,
  lifetimeJitter: undefined,
  maxReplicaLagMs: undefined,
  replicaCheckIntervalMs: undefined,
  replicaCheckTimeoutMs: undefined,
  replicaReadmitAfter: undefined,
  slowQueryMs: undefined,
  leakDetectionMs: undefined,
  maxQueryNames: undefined,
  sessionKey: undefined,
  applicationName: undefined,
  closeTimeoutMs: undefined,
  prepare: undefined,
  statementCacheSize: undefined
}

// a typo must fail at registration, naming the key and the option it is a
// typo of, instead of the default being used silently
const cases: Array<[Record<string, unknown>, RegExp]> = [
  [{ maxx: 5 }, /"maxx":? is unknown; did you mean "max"\?/],
  [{ replicasMax: 5 }, /"replicasMax":? is unknown; did you mean "replicaMax"\?/],
  [{ acquireTimeout: 5 }, /"acquireTimeout":? is unknown; did you mean "acquireTimeoutMs"\?/],
  [{ connectionString: 'postgres://x' }, /"connectionString":? is unknown; the primary is `primary`/],
  [{ nonsense: 1 }, /"nonsense":? is unknown; the options are primary, replicas, min, max/]
]

t.test('an unknown option fails at register with a hint', async (t) => {
  for (const [opts, message] of cases) {
    t.throws(() => normalizeOptions({ ...BASE, ...opts } as never), { code: 'HEADROOM_POOL_INVALID_OPTION', message }, String(message))
  }
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(headroomPool, { ...BASE, ...cases[0]![0] } as never)
  await t.rejects(async () => { await app.ready() }, errors.InvalidOption)
})

t.test('every documented option is known', async (t) => {
  t.doesNotThrow(() => normalizeOptions({ ...ALL, ...BASE } as never))
})
