import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { TestContext } from './teardown.js'

/**
 * A client as DESIGN.md asks an application to configure one: nothing waits
 * in an offline queue, one retry, reconnects every 50 ms (so a restarted
 * server is found quickly).
 */
export const APP_REDIS_OPTIONS: Readonly<RedisOptions> = Object.freeze({
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  retryStrategy: () => 50
})

/**
 * An ioredis client to `target` (a URL, or a port on 127.0.0.1) with
 * `options` as given (ioredis's defaults otherwise; see APP_REDIS_OPTIONS),
 * disconnected at teardown. It has an `error` listener, as an application's
 * has: without one ioredis prints every reconnect failure with its stack.
 */
export function redisClient (t: TestContext, target: string | number, options: RedisOptions = {}): Redis {
  const client = typeof target === 'number' ? new Redis(target, '127.0.0.1', { ...options }) : new Redis(target, { ...options })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

/** An ioredis Cluster client on `startupNodes` with `options` as given, an `error` listener, disconnected at teardown. */
export function clusterClient (t: TestContext, startupNodes: Array<{ host: string, port: number }>, options: ClusterOptions = {}): Cluster {
  const client = new Cluster(startupNodes, { ...options })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

/**
 * Resolves with `client` once it is ready (at once if it is already).
 * Connection errors on the way are not failures (`events.once` would reject
 * on the first one): a client retries; after `timeoutMs` it rejects, naming
 * the last error.
 */
export function whenReady<C extends Redis | Cluster> (client: C, timeoutMs = 15_000): Promise<C> {
  if (client.status === 'ready') return Promise.resolve(client)
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined
    const onError = (err: Error) => { lastError = err }
    const onReady = () => { done(); resolve(client) }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`Redis client not ready after ${timeoutMs} ms (status ${client.status})${lastError ? `: ${lastError.message}` : ''}`))
    }, timeoutMs)
    const done = () => {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('error', onError)
    }
    client.on('error', onError)
    client.once('ready', onReady)
  })
}
