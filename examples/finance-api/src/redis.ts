import { setTimeout as sleep } from 'node:timers/promises'
import type { RedisClient } from '@headroom/core'
import type { AppCheck } from '@headroom/health'
import { Cluster, Redis } from 'ioredis'
import type { Config, RedisTarget } from './config.js'

/** How long startup waits for Redis before going on degraded (the plugins' fallbacks serve meanwhile). */
export const REDIS_CONNECT_WAIT_MS = 3000
/**
 * @default 2000: a cluster client re-reads the slot map this often, so after
 * a master failover it finds the promoted replica within a couple of seconds
 * even when no command has hit the dead master yet.
 */
export const CLUSTER_SLOTS_REFRESH_MS = 2000
/** @default 5: MOVED/ASK hops one command may follow (a resharding needs one or two) */
export const CLUSTER_MAX_REDIRECTIONS = 5

/** reconnect quickly at first, then every 2 s, forever: recovery is automatic (DESIGN.md) */
const reconnectDelay = (times: number) => Math.min(times * 100, 2000)

interface Log {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

/** The clients of the app's Redis deployments by use, and the readiness check of each. */
export interface RedisConnections {
  /** sessions and rate limits */
  sessions: RedisClient | undefined
  /** the cache and its invalidation bus */
  cache: RedisClient | undefined
  /** `redis-sessions:connection` and `redis-cache:connection`: which Redis each use depends on, and whether it is reachable */
  checks: AppCheck[]
  close (): Promise<void>
}

/**
 * One client per distinct Redis deployment: REDIS_URL alone gives one client
 * shared by every use; SESSION_REDIS_URL / CACHE_REDIS_URL give each its own.
 * The offline queue is off (DESIGN.md): while Redis is away a command fails
 * at once and the plugin's fallback answers instead of queueing until the
 * request times out. Startup waits a bounded time and never fails on an
 * unreachable Redis: the server starts degraded and the client keeps
 * reconnecting.
 */
export async function connectRedis (targets: Config['redis'], log: Log): Promise<RedisConnections> {
  const { sessions: sessionsTarget, cache: cacheTarget } = targets
  const same = sessionsTarget !== undefined && cacheTarget !== undefined && sameTarget(sessionsTarget, cacheTarget)
  const sessions = sessionsTarget && createClient(sessionsTarget)
  const cache = same ? sessions : cacheTarget && createClient(cacheTarget)
  const owned = [...new Set([sessions, cache])].filter((c): c is RedisClient => c !== undefined)
  if (owned.length > 0) log.info({ sessions: sessionsTarget?.display, cache: cacheTarget?.display }, 'Redis: sessions and rate limits, and the cache')
  await Promise.all(owned.map((client) => waitReady(client, displayOf(client === sessions ? sessionsTarget : cacheTarget), log)))

  const checks: AppCheck[] = []
  if (sessions && sessionsTarget) checks.push(connectionCheck('redis-sessions:connection', sessions, sessionsTarget, same ? 'sessions, rate limits and the cache' : 'sessions and rate limits'))
  if (cache && cacheTarget) checks.push(connectionCheck('redis-cache:connection', cache, cacheTarget, same ? 'sessions, rate limits and the cache (the same Redis as redis-sessions)' : 'the cache'))
  return {
    sessions,
    cache,
    checks,
    async close () {
      await Promise.all(owned.map((c) => c.quit().catch(() => c.disconnect())))
    }
  }
}

function sameTarget (a: RedisTarget, b: RedisTarget): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b)
}

function displayOf (target: RedisTarget | undefined): string {
  return target?.display ?? 'redis'
}

function createClient (target: RedisTarget): RedisClient {
  const perConnection = {
    // one retry: a command on a connection that just dropped gets one more chance, not a queue
    maxRetriesPerRequest: 1,
    connectTimeout: 2000
  }
  const client: RedisClient = target.mode === 'standalone'
    ? new Redis(target.url, { ...perConnection, enableOfflineQueue: false, retryStrategy: reconnectDelay })
    : new Cluster(target.nodes, {
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectDelay,
      slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
      slotsRefreshTimeout: 1000,
      maxRedirections: CLUSTER_MAX_REDIRECTIONS,
      // A command that met a closed connection waits this long, re-reads the
      // slots, and retries (at most CLUSTER_MAX_REDIRECTIONS times): short, so
      // a dead master's keys fail within the plugins' command timeout and
      // their fallbacks answer, instead of every request waiting it out.
      // CLUSTERDOWN (a slot without a master) is not retried at all.
      retryDelayOnFailover: 20,
      retryDelayOnClusterDown: 0,
      retryDelayOnTryAgain: 100,
      redisOptions: {
        ...perConnection,
        ...(target.username !== undefined ? { username: target.username } : {}),
        ...(target.password !== undefined ? { password: target.password } : {}),
        ...(target.tls ? { tls: {} } : {})
      }
    })
  // reported by the plugins' health checks and metrics and by the connection check; ioredis reconnects.
  // Without a listener an unreachable node would be an unhandled 'error' event: a crash at start.
  client.on('error', () => {})
  return client
}

async function waitReady (client: RedisClient, display: string, log: Log): Promise<void> {
  if (client.status === 'ready') return
  // not events.once: it rejects on the first 'error' event, and a refused
  // connection emits one at once, which used to fail the whole startup
  const ready = new Promise<boolean>((resolve) => client.once('ready', () => resolve(true)))
  const timeout = sleep(REDIS_CONNECT_WAIT_MS, false, { ref: false })
  if (await Promise.race([ready, timeout])) return
  log.warn({ redis: display }, 'Redis is not reachable yet: starting degraded (in-memory fallbacks) until it is')
  ready.then(() => log.info({ redis: display }, 'Redis is reachable now'))
}

/**
 * Readiness names the use and the kind of deployment, not its addresses:
 * the probe is reachable through the load balancer, and hosts and ports go to
 * logs only (the startup lines name them).
 */
function connectionCheck (name: string, client: RedisClient, target: RedisTarget, uses: string): AppCheck {
  const where = target.mode === 'cluster' ? 'a Redis Cluster' : 'one Redis'
  return {
    name,
    // the plugins fall back while it is away: degraded, not down
    critical: false,
    async check () {
      if (client.status !== 'ready') return { status: 'warn', output: `${where} (${uses}): client ${client.status}` }
      if (client instanceof Cluster) {
        return { status: 'pass', output: `${where} (${uses})`, observedValue: client.nodes('master').length, observedUnit: 'masters' }
      }
      return { status: 'pass', output: `${where} (${uses})` }
    }
  }
}
