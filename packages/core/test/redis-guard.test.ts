import t from 'tap'
import { Redis } from 'ioredis'
import { startRedis } from '@headroom/testing'
import { errors, RedisGuard, withTimeout } from '../src/index.js'

t.test('a killed Redis costs at most one timeout, then the circuit fails fast; recovery is automatic', async (t) => {
  const server = await startRedis(t)
  const client = new Redis(server.port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 50 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await new Promise((resolve) => client.once('ready', resolve))
  const guard = new RedisGuard(client, { name: 'test', commandTimeoutMs: 100, failureThreshold: 2, resetTimeoutMs: 200 })
  t.equal(await guard.run((c) => c.ping()), 'PONG')

  await server.kill()
  for (let i = 0; i < 5; i++) {
    const started = performance.now()
    await t.rejects(guard.run((c) => c.ping()))
    t.ok(performance.now() - started < 150, `call ${i} bounded by the timeout (${Math.round(performance.now() - started)} ms)`)
  }
  t.equal(guard.state, 'open')
  t.notOk(guard.healthy)

  await server.start()
  let answer = ''
  for (let i = 0; i < 100 && answer !== 'PONG'; i++) {
    answer = await guard.run((c) => c.ping()).catch(() => '')
    if (answer !== 'PONG') await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(answer, 'PONG', 'Redis used again after the restart')
  t.equal(guard.state, 'closed')
})

t.test('a command slower than the timeout is cut off with a 503 error', async (t) => {
  // the slow command holds a timer of its own: the guard's timer is unref()ed
  const slow = () => new Promise((resolve) => setTimeout(resolve, 500))
  await t.rejects(withTimeout(slow(), 20), errors.RedisTimeout)
  try {
    await withTimeout(slow(), 20)
  } catch (err) {
    t.equal((err as { statusCode: number }).statusCode, 503)
  }
  t.equal(await withTimeout(Promise.resolve(1), 20), 1)
})
