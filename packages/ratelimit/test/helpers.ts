import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { Redis } from 'ioredis'
import headroomRateLimit, { type HeadroomRateLimitOptions } from '../src/index.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/** A client as DESIGN.md asks for: no offline queue, quick reconnects; closed at teardown. */
export function redisClient (t: Teardown, url: string): Redis {
  const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 50 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

export async function ready (client: Redis): Promise<Redis> {
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
  return client
}

/** An app with the plugin and a few routes, closed at teardown. */
export async function buildApp (
  t: Teardown,
  options: HeadroomRateLimitOptions,
  extra?: (app: FastifyInstance) => void,
  server: FastifyServerOptions = {}
): Promise<FastifyInstance> {
  const app = Fastify(server)
  t.teardown(() => app.close())
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
