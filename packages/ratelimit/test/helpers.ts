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

/** One request of a log: when it was sent and answered (performance.now()), and its status. */
export interface Entry { sent: number, recv: number, status: number }

/**
 * The most admissions any closed window of length `w` certainly contains: an
 * admission happened between its request's send and receive times, so a
 * request sent at or after `start` and answered by `start + w` was admitted
 * inside [start, start + w]. Every admitted request's send time is tried as a
 * start. Sound (never blames a correct limiter), and a fixed window's burst
 * across its boundary shows up at once.
 */
export function maxInWindow (log: Entry[], w: number): number {
  const admitted = log.filter((e) => e.status === 200).sort((a, b) => a.sent - b.sent)
  let max = 0
  for (let i = 0; i < admitted.length; i++) {
    const start = (admitted[i] as Entry).sent
    let inside = 0
    for (let j = i; j < admitted.length && (admitted[j] as Entry).sent <= start + w; j++) {
      if ((admitted[j] as Entry).recv <= start + w) inside++
    }
    if (inside > max) max = inside
  }
  return max
}
