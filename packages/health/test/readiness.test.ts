import { getHub, type HealthCheckResult } from '@headroom/core'
import Fastify, { type FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import t from 'tap'
import { headroomHealth, type HealthOptions, type HealthReport } from '../src/index.js'
import { sleep, testApp } from '@headroom/testing'

const quiet = { checkIntervalMs: 60_000, handleSignals: false, pressure: false } satisfies HealthOptions

function build (opts: HealthOptions = {}) {
  const app = Fastify()
  return app
    .register(headroomHealth, { ...quiet, ...opts })
}

/** A plugin in the shape the other headroom plugins have: it only adds its check to the hub. */
function checkPlugin (name: string, check: () => Promise<HealthCheckResult>, critical = true): FastifyPluginAsync {
  return fp(async (fastify) => { getHub(fastify).addCheck({ name, check, critical, owner: 'test' }) }, { name: `test-${name}` })
}

const pass = async (): Promise<HealthCheckResult> => ({ status: 'pass', observedValue: 3, observedUnit: 'ms' })
const fail = async (): Promise<HealthCheckResult> => ({ status: 'fail', output: 'connection refused' })
const warn = async (): Promise<HealthCheckResult> => ({ status: 'warn', output: 'fallback active' })

t.test('liveness is 200 application/health+json and never runs a check', async (t) => {
  let calls = 0
  const app = testApp(t)
  await app.register(checkPlugin('postgres:primary', async () => { calls++; return { status: 'fail' } }))
  await app.register(headroomHealth, quiet)
  await app.ready()
  const before = calls
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/health\+json/)
  t.equal(res.json().status, 'pass')
  t.equal(calls, before, 'liveness did not run the failing check')
})

t.test('readiness is the IETF health+json of every check, whatever the registration order', async (t) => {
  const app = testApp(t)
  await app.register(checkPlugin('postgres:primary', pass)) // before the health plugin
  await app.register(headroomHealth, { ...quiet, serviceId: 'finance-api', releaseId: '1.2.3' })
  await app.register(checkPlugin('redis:session', pass)) // after it
  const res = await app.inject('/health/ready')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/health\+json/)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json() as HealthReport
  t.equal(body.status, 'pass')
  t.equal(body.serviceId, 'finance-api')
  t.equal(body.releaseId, '1.2.3')
  t.match(body.checks['postgres:primary'], [{ componentType: 'datastore', status: 'pass', observedValue: 3, observedUnit: 'ms', time: String }])
  t.ok(body.checks['redis:session'], 'a check registered after the health plugin appears')
  t.ok(!Number.isNaN(Date.parse(body.checks['redis:session']?.[0]?.time ?? '')), 'time is an ISO date')
  t.match(body.checks['eventloop:delay'], [{ componentType: 'system', observedUnit: 'ms', status: 'pass' }])
})

t.test('a failing critical check is 503 fail; a failing non-critical one and a warn are 200 warn', async (t) => {
  const cases: Array<[string, FastifyPluginAsync[], number, string]> = [
    ['critical fail', [checkPlugin('postgres:primary', fail)], 503, 'fail'],
    ['non-critical fail', [checkPlugin('redis:cache', fail, false)], 200, 'warn'],
    ['warn', [checkPlugin('redis:session', warn)], 200, 'warn'],
    ['warn and critical fail', [checkPlugin('redis:session', warn), checkPlugin('postgres:primary', fail)], 503, 'fail']
  ]
  for (const [label, plugins, code, status] of cases) {
    const app = Fastify()
    for (const p of plugins) await app.register(p)
    await app.register(headroomHealth, quiet)
    const res = await app.inject('/health/ready')
    t.equal(res.statusCode, code, `${label}: ${code}`)
    t.equal(res.json().status, status, `${label}: ${status}`)
    if (status === 'fail') t.match(res.json().output, /postgres:primary failed/)
    await app.close()
  }
})

t.test('the app adds checks through the checks option, into the same hub', async (t) => {
  const app = build({ checks: [{ name: 'payments-api:reachable', check: warn, critical: false }] })
  t.teardown(() => app.close())
  await app.ready()
  t.ok(getHub(app).checks().some((c) => c.name === 'payments-api:reachable' && c.owner === 'app'))
  const res = await app.inject('/health/ready')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { status: 'warn', checks: { 'payments-api:reachable': [{ componentType: 'component', status: 'warn', output: 'fallback active' }] } })
})

t.test('a check that hangs fails at its timeout, a throwing one and a malformed one fail, and none crashes readiness', async (t) => {
  let hung = 0
  const app = build({
    checkTimeoutMs: 100,
    checks: [
      { name: 'slow:hang', check: () => { hung++; return new Promise(() => {}) } },
      { name: 'broken:throws', check: () => { throw new Error('boom') } },
      { name: 'broken:shape', check: async () => ({ ok: true }) as unknown as HealthCheckResult }
    ]
  })
  t.teardown(() => app.close())
  const started = Date.now()
  await app.ready()
  t.ok(Date.now() - started < 2000, 'ready() waits at most about the check timeout')
  const body = (await app.inject('/health/ready')).json() as HealthReport
  t.equal(body.status, 'fail')
  t.match(body.checks['slow:hang']?.[0]?.output, /timed out after 100 ms/)
  t.match(body.checks['broken:throws']?.[0]?.output, /boom/)
  t.match(body.checks['broken:shape']?.[0]?.output, /did not return/)
  await app.health.runChecks()
  t.equal(hung, 1, 'a check still running from an earlier round is not started again')
  t.match((await app.inject('/health/ready')).json().checks['slow:hang'][0].output, /still running/)
})

t.test('a probe storm of 1,000 requests runs each check at most once per interval', async (t) => {
  const calls = { primary: 0, session: 0 }
  const intervalMs = 300
  const app = testApp(t)
  await app.register(checkPlugin('postgres:primary', async () => { calls.primary++; return { status: 'pass' } }))
  await app.register(checkPlugin('redis:session', async () => { calls.session++; return { status: 'pass' } }, false))
  await app.register(headroomHealth, { ...quiet, checkIntervalMs: intervalMs, checkTimeoutMs: 100 })
  await app.ready()
  const started = Date.now()
  const before = { ...calls }
  // 10 waves of 100 concurrent probes, spread over about 5 intervals
  const codes: number[] = []
  for (let wave = 0; wave < 10; wave++) {
    codes.push(...await Promise.all(Array.from({ length: 100 }, () => app.inject('/health/ready').then((r) => r.statusCode))))
    await sleep(150)
  }
  const elapsed = Date.now() - started
  t.equal(codes.length, 1000)
  t.ok(codes.every((c) => c === 200), 'every probe answered 200')
  const intervals = Math.ceil(elapsed / intervalMs)
  for (const name of ['primary', 'session'] as const) {
    const ran = calls[name] - before[name]
    t.ok(ran <= intervals, `${name}: ${ran} runs for 1,000 probes over ${elapsed} ms (at most one per ${intervalMs} ms interval: ${intervals})`)
    t.ok(ran >= 2, `${name}: the background runs went on during the storm (${ran})`)
  }
})

t.test('drain(): readiness fails at once, liveness stays 200', async (t) => {
  const app = build({ drainDelayMs: 300, drainTimeoutMs: 1000 })
  await app.ready()
  t.equal((await app.inject('/health/ready')).statusCode, 200)
  const drained = app.health.drain()
  t.equal(app.health.draining, true)
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 'fail', output: /draining/ })
  t.equal((await app.inject('/health')).statusCode, 200)
  t.equal(await drained, 'clean')
})
