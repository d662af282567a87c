import t from 'tap'
import Fastify from 'fastify'
import { once } from 'node:events'
import { getHub, errors as coreErrors } from '@headroom/core'
import { isolatedRedis } from '@headroom/testing'
import type { Redis } from 'ioredis'
import plugin from '../src/index.js'

/** every event the client has listeners for, with how many */
function listeners (client: Redis): Record<string, number> {
  return Object.fromEntries(client.eventNames().map((e) => [String(e), client.listenerCount(e)]))
}

t.test('registered and closed 1,000 times on one shared client, the plugin leaves no listener or health check behind', async (t) => {
  const r = await isolatedRedis(t)
  const client = r.client()
  client.on('error', () => {})
  if (client.status !== 'ready') await once(client, 'ready')
  client.setMaxListeners(100) // 20 apps at once each listen while registered
  const before = listeners(client)
  let checksWhileUp = -1
  const leftChecks: string[] = []
  // 1,000 registrations, 20 apps at a time on the one client (as in a test suite, or an app's workers)
  const registerAndClose = async (i: number): Promise<void> => {
    // a loaded machine (load average 20+) can take seconds to connect a plugin's subscriber: not what this test measures
    const app = Fastify({ pluginTimeout: 60_000 })
    await app.register(plugin, { redis: client, prefix: r.prefix })
    await app.ready()
    const hub = getHub(app)
    if (i === 0) checksWhileUp = hub.checks().filter((c) => c.name === 'redis:ratelimit').length
    await app.close()
    leftChecks.push(...hub.checks().map((c) => c.name))
  }
  for (let i = 0; i < 1000; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => registerAndClose(i + j)))
  t.equal(checksWhileUp, 1, 'while registered, the plugin reports its Redis check')
  t.same(leftChecks, [], 'no check is left on a closed app\'s hub')
  t.same(listeners(client), before, 'the shared client has exactly the listeners it had before')
})

t.test('a redis option that is not an ioredis client fails at register with core\'s error', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(plugin, { redis: { get: () => null } as never })
  const err = await app.ready().then(() => null, (e: Error) => e)
  t.ok(err instanceof coreErrors.InvalidOption, 'InvalidOption')
  t.equal((err as { code?: string } | null)?.code, 'HEADROOM_CORE_INVALID_OPTION')
  t.match(err?.message, /Invalid @headroom\/ratelimit option "redis": expected an ioredis Redis or Cluster client/)
})
