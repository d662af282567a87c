import type { FastifyInstance } from 'fastify'
import { InvalidOption } from './errors.js'
import { getHub, type HealthCheckResult, type Hub } from './hub.js'
import { findRedis, RedisGuard, type RedisClient, type RedisGuardOptions } from './redis.js'

export interface UseRedisOptions extends Omit<RedisGuardOptions, 'name'> {
  /** the plugin's short name: the guard's name and the check `redis:<name>`, e.g. `session` */
  name: string
  /** the package, in errors and as the check's owner, e.g. `@headroom/session` */
  owner: string
  /** the plugin's `redis` option as the user passed it: validated here */
  option: unknown
  /**
   * How the plugin's readiness check reports while it has a client; called
   * at check time with the seam (its `ready`, its guard).
   */
  check: (seam: RedisSeam & { guard: RedisGuard, client: RedisClient }) => Promise<HealthCheckResult>
  /**
   * The `pass` output of the check without a client; omitted: no check is
   * registered without a client.
   */
  withoutClient?: string
  /**
   * A failing critical check makes the instance not ready; the Redis checks
   * of the headroom plugins degrade only.
   * @default false
   */
  critical?: boolean
}

/** A plugin's attachment to the app's Redis, from `useRedis`. */
export interface RedisSeam {
  /** the shared client: the `redis` option, else `fastify.redis`, else null (the plugin runs on its fallback) */
  readonly client: RedisClient | null
  /** bounds the plugin's commands (timeout, circuit); null without a client */
  readonly guard: RedisGuard | null
  /** the hub the check was registered with */
  readonly hub: Hub
  /** true while calls go to Redis: the client is `ready` and the circuit is not open (false without a client) */
  readonly ready: boolean
}

/**
 * Whether `value` can be used as the `redis` option: an ioredis Redis or
 * Cluster (of any copy of ioredis, so by its shape). The methods tested are
 * the ones the plugins rely on beyond plain commands.
 */
export function isRedisClient (value: unknown): value is RedisClient {
  if (typeof value !== 'object' || value === null) return false
  const c = value as Record<string, unknown>
  return typeof c.status === 'string' &&
    typeof c.on === 'function' && typeof c.off === 'function' &&
    typeof c.duplicate === 'function' && typeof c.defineCommand === 'function'
}

/**
 * The only way a headroom plugin attaches to Redis. Validates the `redis`
 * option (`HEADROOM_CORE_INVALID_OPTION`), finds the shared client (the
 * option, else `fastify.redis` from @fastify/redis, else none), guards it
 * (`RedisGuard`: bounded commands, circuit), registers the readiness check
 * `redis:<name>` with the app's hub, and on close disposes of the guard
 * (it stops listening to the client, which it never closes) and removes the
 * check. Call it at the top of the plugin function, so a bad `redis`
 * option fails before anything else is set up.
 */
export function useRedis (fastify: FastifyInstance, options: UseRedisOptions): RedisSeam {
  const { name, owner, option, check, withoutClient, critical = false, ...guardOptions } = options
  if (option !== undefined && !isRedisClient(option)) {
    throw new InvalidOption(owner, 'redis', 'expected an ioredis Redis or Cluster client (the plugin never closes it); omit it to use fastify.redis from @fastify/redis')
  }
  const hub = getHub(fastify)
  const client = findRedis(fastify, option as RedisClient | undefined)
  const checkName = `redis:${name}`
  // the check first: a duplicate name throws before the guard listens to the client
  let guard: RedisGuard | null = null
  const seam: RedisSeam = {
    client,
    get guard () { return guard },
    hub,
    get ready () { return guard !== null && guard.healthy }
  }
  if (client) {
    hub.addCheck({ name: checkName, owner, critical, check: () => check(seam as RedisSeam & { guard: RedisGuard, client: RedisClient }) })
  } else if (withoutClient !== undefined) {
    hub.addCheck({ name: checkName, owner, critical, check: async () => ({ status: 'pass', output: withoutClient }) })
  }
  try {
    guard = client ? new RedisGuard(client, { ...guardOptions, name }) : null
  } catch (err) {
    hub.removeCheck(checkName)
    throw err
  }
  fastify.addHook('onClose', async () => {
    guard?.dispose()
    hub.removeCheck(checkName)
  })
  return seam
}
