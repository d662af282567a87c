import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

/** How long startup waits for Redis before going on degraded (the plugins' fallbacks serve meanwhile). */
export const REDIS_CONNECT_WAIT_MS = 3000

/**
 * The app's one Redis client, shared by session, ratelimit and cache through
 * @fastify/redis. The offline queue is off (DESIGN.md): while Redis is away a
 * command fails at once and the plugin's fallback answers, instead of
 * queueing until the request times out. ioredis keeps reconnecting.
 */
export async function connectRedis (url: string, log: { warn (obj: object, msg: string): void }): Promise<Redis> {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // reconnect quickly at first, then every 2 s
    retryStrategy: (times) => Math.min(times * 100, 2000)
  })
  client.on('error', () => { /* reported by the plugins' health checks and metrics; ioredis reconnects */ })
  if (client.status !== 'ready') {
    const ready = once(client, 'ready').then(() => true)
    const timeout = sleep(REDIS_CONNECT_WAIT_MS, false, { ref: false })
    if (!await Promise.race([ready, timeout])) {
      log.warn({ redis: new URL(url).host }, 'Redis is not reachable yet: starting degraded (in-memory fallbacks) until it is')
    }
  }
  return client
}
