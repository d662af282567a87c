import { once } from 'node:events'
import type { FastifyInstance, FastifyPluginAsync, FastifyPluginCallback } from 'fastify'
import type { Redis } from 'ioredis'
import { testApp } from './app.js'
import { isolatedRedis } from './redis.js'
import type { Test } from 'tap'

export interface SeamCase {
  /** the package's name as its errors spell it, e.g. `@headroom/cache` */
  packageName: string
  /** the readiness check the plugin registers on the hub, e.g. `redis:cache` */
  check: string
  plugin: FastifyPluginAsync<any> | FastifyPluginCallback<any>
  /** the plugin's options on the shared client, its keys under `prefix` */
  options: (redis: Redis, prefix: string) => Record<string, unknown>
  /** the checks on an app's hub: core's `getHub(app).checks()` (passed in: @headroom/testing does not depend on core) */
  checks: (app: FastifyInstance) => ReadonlyArray<{ name: string }>
  /** core's `errors.InvalidOption` */
  invalidOption: abstract new (...args: any[]) => Error
}

/** every event the client has listeners for, with how many */
function listeners (client: Redis): Record<string, number> {
  return Object.fromEntries(client.eventNames().map((e) => [String(e), client.listenerCount(e)]))
}

/**
 * #16's seam test for a plugin that talks to Redis through core's `useRedis`:
 * registered and closed 1,000 times on one shared client it leaves no
 * listener on the client and no check on a closed app's hub, and a `redis`
 * option that is not an ioredis client fails at registration with core's
 * one error and wording.
 */
export function seamSuite (t: Test, c: SeamCase): void {
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
      const app = testApp(t, { pluginTimeout: 60_000 })
      await app.register(c.plugin, c.options(client, r.prefix))
      await app.ready()
      if (i === 0) checksWhileUp = c.checks(app).filter((x) => x.name === c.check).length
      await app.close()
      leftChecks.push(...c.checks(app).map((x) => x.name))
    }
    for (let i = 0; i < 1000; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => registerAndClose(i + j)))
    t.equal(checksWhileUp, 1, 'while registered, the plugin reports its Redis check')
    t.same(leftChecks, [], 'no check is left on a closed app\'s hub')
    t.same(listeners(client), before, 'the shared client has exactly the listeners it had before')
  })

  t.test('a redis option that is not an ioredis client fails at register with core\'s error', async (t) => {
    const app = testApp(t)
    const options = { ...c.options({} as Redis, 'seam:'), redis: { get: () => null } }
    app.register(c.plugin, options)
    const err = await app.ready().then(() => null, (e: Error) => e)
    t.ok(err instanceof c.invalidOption, 'InvalidOption')
    t.equal((err as { code?: string } | null)?.code, 'HEADROOM_CORE_INVALID_OPTION')
    const name = c.packageName.replace('/', '\\/')
    t.match(err?.message, new RegExp(`Invalid ${name} option "redis": expected an ioredis Redis or Cluster client`))
  })
}
