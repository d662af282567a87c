import t from 'tap'
import { CircuitBreaker, errors, type CircuitState } from '../src/index.js'

function setup () {
  let now = 0
  const changes: Array<[CircuitState, CircuitState]> = []
  const breaker = new CircuitBreaker({
    name: 'test',
    failureThreshold: 2,
    resetTimeoutMs: 100,
    maxResetTimeoutMs: 400,
    now: () => now,
    onStateChange: (s, p) => changes.push([s, p])
  })
  return { breaker, changes, advance: (ms: number) => { now += ms } }
}
const fail = () => Promise.reject(new Error('down'))
const ok = () => Promise.resolve('up')

t.test('opens after the threshold and then fails without calling', async (t) => {
  const { breaker, changes } = setup()
  await t.rejects(breaker.exec(fail), /down/)
  t.equal(breaker.state, 'closed', 'one failure is below the threshold')
  await t.rejects(breaker.exec(fail), /down/)
  t.equal(breaker.state, 'open')
  let called = false
  await t.rejects(breaker.exec(async () => { called = true }), errors.CircuitOpen)
  t.notOk(called, 'the dependency is not called while open')
  t.same(changes, [['open', 'closed']])
})

t.test('half-open lets one probe through; success closes, failure doubles the back-off up to the cap', async (t) => {
  const { breaker, advance } = setup()
  await breaker.exec(fail).catch(() => {})
  await breaker.exec(fail).catch(() => {})
  advance(100)
  t.equal(breaker.state, 'half-open')
  await t.rejects(breaker.exec(fail), /down/, 'the probe is called')
  t.equal(breaker.state, 'open')
  advance(100)
  t.equal(breaker.state, 'open', 'back-off doubled to 200')
  advance(100)
  t.equal(breaker.state, 'half-open')
  await breaker.exec(fail).catch(() => {})
  advance(400)
  await breaker.exec(fail).catch(() => {})
  advance(399)
  t.equal(breaker.state, 'open', 'capped at 400, not 800')
  advance(1)
  t.equal(await breaker.exec(ok), 'up')
  t.equal(breaker.state, 'closed')
  await breaker.exec(fail).catch(() => {})
  t.equal(breaker.state, 'closed', 'the threshold counts afresh after closing')
})

t.test('only one probe at a time while half-open', async (t) => {
  const { breaker, advance } = setup()
  await breaker.exec(fail).catch(() => {})
  await breaker.exec(fail).catch(() => {})
  advance(100)
  let release!: () => void
  const probe = breaker.exec(() => new Promise<void>((resolve) => { release = resolve }))
  await t.rejects(breaker.exec(ok), errors.CircuitOpen, 'a second caller does not probe')
  release()
  await probe
  t.equal(breaker.state, 'closed')
})

t.test('bad options are refused with a message naming the option', async (t) => {
  t.throws(() => new CircuitBreaker({ name: 'x', failureThreshold: 0 }), /failureThreshold/)
  t.throws(() => new CircuitBreaker({ name: 'x', resetTimeoutMs: 0 }), /resetTimeoutMs/)
  t.throws(() => new CircuitBreaker({ name: 'x', resetTimeoutMs: 10, maxResetTimeoutMs: 5 }), /maxResetTimeoutMs/)
})
