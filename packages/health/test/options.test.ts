import Fastify from 'fastify'
import t from 'tap'
import { errors, headroomHealth, normalizeOptions, DEFAULT_DRAIN_DELAY_MS, DEFAULT_CHECK_INTERVAL_MS, type HealthOptions } from '../src/index.js'

t.test('defaults', async (t) => {
  const o = normalizeOptions()
  t.equal(o.livenessPath, '/health')
  t.equal(o.readinessPath, '/health/ready')
  t.equal(o.checkIntervalMs, DEFAULT_CHECK_INTERVAL_MS)
  t.ok(o.drainDelayMs >= 5000, 'the drain delay covers at least one probe period')
  t.equal(o.drainDelayMs, DEFAULT_DRAIN_DELAY_MS)
  t.equal(o.handleSignals, true)
  t.match(o.metrics, { path: '/metrics', defaultMetrics: true, token: undefined })
  t.ok(o.metrics && o.metrics.allow.includes('10.0.0.0/8'))
  t.match(o.pressure, { maxEventLoopDelayMs: 1000, maxEventLoopUtilization: 0, maxRssBytes: 0, retryAfterSeconds: 10, maxInFlight: 0, inFlightRetryAfterSeconds: 1 })
  t.ok(o.pressure && o.pressure.maxHeapUsedBytes > 0)
})

t.test('a bad option fails at register with a message naming it', async (t) => {
  const bad: Array<[HealthOptions, RegExp]> = [
    [{ livenessPath: 'health' }, /"livenessPath" must be a path/],
    [{ checkIntervalMs: -1 }, /"checkIntervalMs" must be a finite number/],
    [{ checkIntervalMs: 1000, checkTimeoutMs: 2000 }, /"checkTimeoutMs" must be at most checkIntervalMs \(1000\)/],
    [{ checks: [{ name: 'nocolon', check: async () => ({ status: 'pass' }) }] }, /"checks\[0\]\.name" must be "component:measurement"/],
    [{ checks: [{ name: 'a:b' } as never] }, /"checks\[0\]\.check" must be a function/],
    [{ pressure: { maxEventLoopUtilization: 2 } }, /"pressure\.maxEventLoopUtilization" must be between 0 and 1/],
    [{ pressure: { maxInFlight: 1.5 } }, /"pressure\.maxInFlight" must be an integer >= 0/],
    [{ pressure: { maxInFlight: -1 } }, /"pressure\.maxInFlight" must be an integer >= 0/],
    [{ pressure: { inFlightRetryAfterSeconds: -1 } }, /"pressure\.inFlightRetryAfterSeconds" must be a finite number >= 0/],
    [{ metrics: { allow: ['not-an-ip'] } }, /"metrics\.allow" has "not-an-ip"/],
    [{ metrics: { allow: ['10.0.0.0/40'] } }, /"metrics\.allow" has "10\.0\.0\.0\/40", whose prefix length is invalid/],
    [{ metrics: { token: '' } }, /"metrics\.token" must be a non-empty string/],
    [{ metrics: { buckets: [1, 0.5] } }, /"metrics\.buckets" must be a non-empty array of increasing/],
    [{ drainTimeoutMs: 0 }, /"drainTimeoutMs" must be a finite number >= 1/],
    [{ readinessPath: '/health' }, /must differ/]
  ]
  for (const [opts, message] of bad) {
    const app = Fastify()
    app.register(headroomHealth, { handleSignals: false, ...opts })
    const err = await app.ready().then(() => null, (e: unknown) => e)
    t.ok(err instanceof errors.InvalidOption, `${JSON.stringify(opts)} rejected`)
    t.match((err as Error).message, message)
    t.equal((err as { code: string }).code, 'HEADROOM_HEALTH_INVALID_OPTION')
    await app.close()
  }
})

t.test('handleSignals: false leaves the process signal handlers alone; true adds and removes them', async (t) => {
  const count = () => process.listenerCount('SIGTERM')
  const base = count()
  const quiet = Fastify()
  await quiet.register(headroomHealth, { handleSignals: false })
  await quiet.ready()
  t.equal(count(), base)
  await quiet.close()
  const app = Fastify()
  await app.register(headroomHealth, { exit: () => {} })
  await app.ready()
  t.equal(count(), base + 1)
  await app.close()
  t.equal(count(), base, 'removed on close')
})
