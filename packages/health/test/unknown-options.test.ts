import t from 'tap'
import Fastify from 'fastify'
import { headroomHealth, errors, normalizeOptions, type HealthOptions } from '../src/index.js'

const BASE = { handleSignals: false }
/** every option, so the compiler fails this file when one is added without this test knowing */
const ALL: { [K in keyof Required<HealthOptions>]: undefined } = {
  livenessPath: undefined,
  readinessPath: undefined,
  checkIntervalMs: undefined,
  checkTimeoutMs: undefined,
  checks: undefined,
  pressure: undefined,
  metrics: undefined,
  handleSignals: undefined,
  drainDelayMs: undefined,
  drainTimeoutMs: undefined,
  exit: undefined,
  serviceId: undefined,
  releaseId: undefined,
  description: undefined
}

// a typo must fail at registration, naming the key and the option it is a
// typo of, instead of the default being used silently
const cases: Array<[Record<string, unknown>, RegExp]> = [
  [{ readinesPath: '/ready' }, /"readinesPath":? is unknown; did you mean "readinessPath"\?/],
  [{ maxEventLoopDelay: 1000 }, /"maxEventLoopDelay":? is unknown; thresholds live under `pressure`/],
  [{ pressure: { maxInflight: 10 } }, /"pressure\.maxInflight":? is unknown; did you mean "maxInFlight"\?/],
  [{ metrics: { paht: '/m' } }, /"metrics\.paht":? is unknown; did you mean "path"\?/],
  [{ handleSignal: false }, /"handleSignal":? is unknown; did you mean "handleSignals"\?/]
]

t.test('an unknown option fails at register with a hint', async (t) => {
  for (const [opts, message] of cases) {
    t.throws(() => normalizeOptions({ ...BASE, ...opts } as never), { code: 'HEADROOM_HEALTH_INVALID_OPTION', message }, String(message))
  }
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(headroomHealth, { ...BASE, ...cases[0]![0] } as never)
  await t.rejects(async () => { await app.ready() }, errors.InvalidOption)
})

t.test('every documented option is known', async (t) => {
  t.doesNotThrow(() => normalizeOptions({ ...ALL, ...BASE } as never))
})
