import t, { type Test } from 'tap'
import { redisClient, sleep, startRedis, whenReady } from '@headroom/testing'
import { errors, RedisGuard, withTimeout } from '../src/index.js'

async function setup (t: Test, commandTimeoutMs = 100) {
  const server = await startRedis(t)
  const client = await whenReady(redisClient(t, server.port, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 50 }))
  const guard = new RedisGuard(client, { name: 'test', commandTimeoutMs, failureThreshold: 2, resetTimeoutMs: 200 })
  t.teardown(() => guard.dispose())
  return { server, client, guard }
}

t.test('a frozen Redis costs one timeout per call until the circuit opens, then nothing; a probe closes it again', async (t) => {
  const { server, guard } = await setup(t)
  t.equal(await guard.run((c) => c.ping()), 'PONG')

  const pid = server.pid()!
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  for (let i = 0; i < 2; i++) {
    const started = performance.now()
    await t.rejects(guard.run((c) => c.ping()), errors.RedisTimeout)
    // the timeout plus scheduling slack for a loaded machine: what matters is that it does not hang
    t.ok(performance.now() - started < 100 + 1000, `call ${i} bounded by the timeout (${Math.round(performance.now() - started)} ms)`)
  }
  t.equal(guard.state, 'open')
  t.notOk(guard.healthy)
  // CircuitOpen is thrown before any command is sent (a sent one would end in RedisTimeout)
  await t.rejects(guard.run((c) => c.ping()), errors.CircuitOpen, 'an open circuit fails at once, without a command')

  process.kill(pid, 'SIGCONT')
  await sleep(250)
  t.equal(guard.state, 'half-open')
  t.equal(await guard.run((c) => c.ping()), 'PONG', 'the probe goes through')
  t.equal(guard.state, 'closed')
})

t.test('a killed Redis fails calls at once without feeding the breaker; the reconnect closes the circuit', async (t) => {
  // a long timeout, so that failing at once is told apart from waiting one out on a loaded machine
  const { server, client, guard } = await setup(t, 2000)
  await server.kill()
  await sleep(100)
  t.not(client.status, 'ready')
  t.notOk(guard.healthy, 'unhealthy while disconnected')
  for (let i = 0; i < 5; i++) {
    const started = performance.now()
    await t.rejects(guard.run((c) => c.ping()), errors.RedisUnavailable)
    t.ok(performance.now() - started < 1000, `call ${i} fails at once while disconnected (no command timeout of 2 s)`)
  }
  t.equal(guard.state, 'closed', 'disconnection is not a breaker failure: no back-off to wait out later')

  await server.start()
  await whenReady(client)
  t.ok(guard.healthy)
  t.equal(await guard.run((c) => c.ping()), 'PONG', 'Redis used again after the restart')
})

t.test('the reconnect closes a circuit that timeouts had opened', async (t) => {
  const { server, client, guard } = await setup(t)
  const pid = server.pid()!
  process.kill(pid, 'SIGSTOP')
  await guard.run((c) => c.ping()).catch(() => {})
  await guard.run((c) => c.ping()).catch(() => {})
  t.equal(guard.state, 'open')
  await server.kill() // SIGKILL ends a stopped process too
  await server.start()
  await whenReady(client)
  t.equal(guard.state, 'closed', 'no waiting for the back-off')
  guard.dispose()
  t.equal(client.listenerCount('ready'), 0, 'dispose() stops listening to the client')
})

t.test('a command slower than the timeout is cut off with a 503 error', async (t) => {
  // the slow command holds a timer of its own: the guard's timer is unref()ed
  const slow = () => sleep(500)
  await t.rejects(withTimeout(slow(), 20), errors.RedisTimeout)
  try {
    await withTimeout(slow(), 20)
  } catch (err) {
    t.equal((err as { statusCode: number }).statusCode, 503)
  }
  t.equal(await withTimeout(Promise.resolve(1), 20), 1)
})

t.test('busy is not down: a reply that came while the event loop was blocked is used, not taken for a timeout', async (t) => {
  // the shared Redis, only read from: nothing here stops or slows it
  const client = await whenReady(redisClient(t, 6379, { enableOfflineQueue: false, maxRetriesPerRequest: 0 }))
  const guard = new RedisGuard(client, { name: 'test', commandTimeoutMs: 50, failureThreshold: 1 })
  t.teardown(() => guard.dispose())
  const block = (ms: number) => { const until = performance.now() + ms; while (performance.now() < until); }

  for (let i = 0; i < 5; i++) {
    const direct = withTimeout(client.ping(), 50)
    const guarded = guard.run((c) => c.ping())
    // the commands are written; the loop is then blocked 4× past the timeout
    block(200)
    t.equal(await direct, 'PONG', `stall ${i}: withTimeout gets the reply that waited in the socket`)
    t.equal(await guarded, 'PONG', `stall ${i}: so does the guard`)
  }
  t.equal(guard.state, 'closed', 'no stall fed the breaker (its threshold is one failure)')
})
