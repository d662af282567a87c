import type { FastifyInstance } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from './breaker.js'
import { RedisTimeout, RedisUnavailable } from './errors.js'
import { raceTimeout } from './timeout.js'

export type RedisClient = Redis | Cluster

/** @default 250: long enough for a loaded Redis on the same network, short enough that an outage is cheap */
export const DEFAULT_COMMAND_TIMEOUT_MS = 250

/**
 * The Redis client a plugin should use: its `redis` option when given (a
 * client, never closed by the plugin), else the app's `fastify.redis` from
 * @fastify/redis, else null.
 */
export function findRedis (fastify: FastifyInstance, option: RedisClient | undefined): RedisClient | null {
  if (option) return option
  const shared = (fastify as unknown as { redis?: RedisClient }).redis
  return shared ?? null
}

export interface RedisGuardOptions extends Partial<Omit<CircuitBreakerOptions, 'name'>> {
  /** shown in errors, logs and metrics, e.g. `session` */
  name: string
  /** @default DEFAULT_COMMAND_TIMEOUT_MS */
  commandTimeoutMs?: number
}

/**
 * Bounds every Redis call a plugin makes on the request path: fails at once
 * when the client is not connected (nothing waits in ioredis's offline queue),
 * gives up after `commandTimeoutMs`, and opens a circuit after repeated
 * failures so an outage costs at most one timeout before the plugin's
 * fallback takes over. Recovery is automatic: the circuit closes when the
 * client reconnects, or when a probe succeeds after the back-off.
 */
export class RedisGuard {
  readonly client: RedisClient
  readonly breaker: CircuitBreaker
  readonly commandTimeoutMs: number

  constructor (client: RedisClient, options: RedisGuardOptions) {
    this.client = client
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
    if (!(this.commandTimeoutMs > 0)) throw new TypeError('commandTimeoutMs must be > 0')
    this.breaker = new CircuitBreaker({ ...options, name: options.name })
    // a fresh connection is the best evidence Redis is back: close the circuit
    // at once instead of waiting out a back-off that grew during the outage
    client.on('ready', this.#onReady)
  }

  #onReady = (): void => { this.breaker.success() }

  /** Stops listening to the client (which the guard never closes). */
  dispose (): void {
    this.client.off('ready', this.#onReady)
  }

  /** True while calls go to Redis: the client is connected and the circuit is not open. */
  get healthy (): boolean {
    return this.client.status === 'ready' && this.breaker.state !== 'open'
  }

  get state (): CircuitState {
    return this.breaker.state
  }

  /** Runs `fn(client)` bounded by the timeout and the circuit; rejects with a 503-class error on any Redis trouble. */
  run<T> (fn: (client: RedisClient) => Promise<T>): Promise<T> {
    // a disconnected client fails at once and is not a breaker failure: the
    // reconnect is ioredis's job, and counting it would only grow the back-off
    if (this.client.status !== 'ready') {
      return Promise.reject(new RedisUnavailable(`client is ${this.client.status}`))
    }
    return this.breaker.exec(() => withTimeout(fn(this.client), this.commandTimeoutMs))
  }
}

/**
 * Whether a Cluster client's slot map makes `node` (`host:port`) the master
 * of any slot. ioredis also drops connections to nodes that serve no slot on
 * a healthy cluster (replicas, startup nodes), each with a `-node` event:
 * only a master's loss can lose data or messages. True without a slot map
 * (a standalone Redis, or a cluster client that has not read one yet).
 */
export function servesSlots (client: RedisClient, node: string): boolean {
  const slots = (client as { slots?: Array<string[] | undefined> }).slots
  if (!Array.isArray(slots) || slots.length === 0) return true
  return slots.some((nodes) => nodes?.[0] === node)
}

/**
 * Rejects with `RedisTimeout` if `promise` has not settled within `ms`; the
 * timer never keeps the process alive. Busy is not down: the verdict waits
 * for the loop's next I/O pass (see `raceTimeout`), so a reply that arrived
 * while the loop was blocked is not taken for an outage. Start the bound when
 * the command is written: a caller that queues commands for a later turn (a
 * batch) bounds them when it sends them.
 */
export function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  return raceTimeout(promise, ms, () => { throw new RedisTimeout(ms) }, true)
}
