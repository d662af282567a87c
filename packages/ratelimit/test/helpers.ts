import { APP_REDIS_OPTIONS, redisClient as testingRedisClient, testApp, type TestContext } from '@headroom/testing'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Redis } from 'ioredis'
import headroomRateLimit, { type HeadroomRateLimitOptions } from '../src/index.js'

export { whenReady as ready } from '@headroom/testing'

/** A client as DESIGN.md asks for: no offline queue, quick reconnects; closed at teardown. */
export function redisClient (t: TestContext, url: string): Redis {
  return testingRedisClient(t, url, APP_REDIS_OPTIONS)
}

/** An app with the plugin and a few routes, closed at teardown. */
export async function buildApp (
  t: TestContext,
  options: HeadroomRateLimitOptions,
  extra?: (app: FastifyInstance) => void,
  server: FastifyServerOptions = {}
): Promise<FastifyInstance> {
  const app = testApp(t, server)
  await app.register(headroomRateLimit, options)
  app.get('/', async () => ({ ok: true }))
  extra?.(app)
  await app.ready()
  return app
}

/** Status codes of `n` concurrent requests, spread round-robin over `apps`. */
export async function burst (apps: FastifyInstance[], n: number, url = '/', headers: Record<string, string> = {}): Promise<number[]> {
  const responses = await Promise.all(Array.from({ length: n }, (_, i) =>
    (apps[i % apps.length] as FastifyInstance).inject({ url, headers })))
  return responses.map((r) => r.statusCode)
}

export function count (codes: number[], code: number): number {
  return codes.filter((c) => c === code).length
}
