import { randomBytes } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { useRedis } from '@headroom/core'
import { Bus } from './bus.js'
import { Engine } from './engine.js'
import { UnknownNamespace } from './errors.js'
import { installHttpCache } from './http.js'
import { L1 } from './l1.js'
import { L2 } from './l2.js'
import { createMetrics } from './metrics.js'
import { PerUserNamespace, SharedNamespace, type Namespace, type UserNamespace } from './namespace.js'
import { normalizeOptions, type CacheOptions, type RouteCacheOptions } from './options.js'

/**
 * The namespaces of your app, for types: declare yours so `ns(name)`
 * returns the right kind (a per-user one has no key operations without
 * `forUser`).
 * ```ts
 * declare module '@headroom/cache' {
 *   interface CacheNamespaces { summary: { perUser: true }, quotes: { perUser: false } }
 * }
 * ```
 */
export interface CacheNamespaces {
  default: { perUser: false }
  http: { perUser: false }
  'http-user': { perUser: true }
}

export type NamespaceName = keyof CacheNamespaces & string
export type NamespaceOf<K extends NamespaceName> = CacheNamespaces[K] extends { perUser: true } ? UserNamespace : Namespace

export interface CacheStats {
  l1: { bytes: number, entries: number, maxBytes: number, maxEntries: number }
  /** Redis configured but unavailable: L1 and the factory serve */
  degraded: boolean
  redis: 'none' | 'ready' | 'unavailable'
  /** invalidations waiting for Redis to come back */
  pendingReplay: number
}

/** `fastify.cache`: the `default` namespace's operations plus the namespaces. */
export interface Cache extends Namespace {
  ns<K extends NamespaceName>(name: K): NamespaceOf<K>
  ns(name: string): Namespace | UserNamespace
  stats(): CacheStats
}

declare module 'fastify' {
  interface FastifyInstance { cache: Cache }
  interface FastifyContextConfig { cache?: RouteCacheOptions | boolean }
}

/** Private state, for tests and diagnostics. */
export const kEngine = Symbol.for('headroom.cache.engine')

const plugin: FastifyPluginAsync<CacheOptions> = async (fastify, opts) => {
  const options = normalizeOptions(opts)
  const redis = useRedis(fastify, {
    name: 'cache',
    owner: '@headroom/cache',
    option: options.redis,
    commandTimeoutMs: options.commandTimeoutMs,
    failureThreshold: options.failureThreshold,
    resetTimeoutMs: options.resetTimeoutMs,
    onStateChange: (state) => {
      if (state === 'open') fastify.log.warn('@headroom/cache: Redis unavailable; serving from L1 and the factory')
      else if (state === 'closed') fastify.log.info('@headroom/cache: Redis is back')
    },
    withoutClient: 'no Redis configured: L1 only (single instance)',
    check: async ({ guard }) => {
      if (live.degraded && guard.breaker.allowsCall) {
        // a probe, so recovery shows without waiting for traffic (a client that is not ready fails it at once)
        await guard.run((c) => c.ping()).catch(() => {})
      }
      if (live.degraded) return { status: 'warn', output: 'Redis unavailable: serving from L1 and the source; invalidations are queued', observedValue: live.pendingReplay, observedUnit: 'pending invalidations' }
      return { status: 'pass', observedValue: l1.bytes, observedUnit: 'L1 bytes' }
    }
  })
  const { client, guard } = redis
  const instanceId = randomBytes(8).toString('base64url')
  const l1 = new L1(options.l1)

  // the closures below run only after `live` exists (at scrape time, on bus messages)
  const metrics = createMetrics(redis.hub.registry, () => ({ bytes: l1.bytes, entries: l1.entries, degraded: live.degraded }))

  let l2: L2 | null = null
  let bus: Bus | null = null
  if (client && guard) {
    l2 = new L2(guard, options.prefix, options.waitForReplicas)
    bus = new Bus(client, l2.channel, instanceId, {
      onInvalidate: (keys, tags) => live.onRemoteInvalidate(keys, tags),
      onResync: () => live.onResync()
    }, fastify.log)
  }
  const live = new Engine(l1, l2, bus, metrics, options.now, fastify.log, options.replayLimit)
  if (bus) await bus.start(Math.max(1000, guard!.commandTimeoutMs))

  const namespaces = new Map<string, SharedNamespace | PerUserNamespace>()
  for (const ns of options.namespaces.values()) {
    namespaces.set(ns.name, ns.perUser ? new PerUserNamespace(live, ns, metrics.ns(ns.name)) : new SharedNamespace(live, ns, metrics.ns(ns.name)))
  }
  const defaultNs = namespaces.get('default') as SharedNamespace

  const cache: Cache = {
    name: 'default',
    perUser: false,
    wrap: (key, factory, o) => defaultNs.wrap(key, factory, o),
    get: (key) => defaultNs.get(key),
    set: (key, value, o) => defaultNs.set(key, value, o),
    delete: (key) => defaultNs.delete(key),
    invalidateTags: (tags) => defaultNs.invalidateTags(tags),
    ns: ((name: string) => {
      const ns = namespaces.get(name)
      if (!ns) throw new UnknownNamespace(name)
      return ns
    }) as Cache['ns'],
    stats: () => ({
      l1: { bytes: l1.bytes, entries: l1.entries, maxBytes: options.l1.maxBytes, maxEntries: options.l1.maxEntries },
      degraded: live.degraded,
      redis: client ? (live.degraded ? 'unavailable' : 'ready') : 'none',
      pendingReplay: live.pendingReplay
    })
  }
  Object.defineProperty(cache, kEngine, { value: live })
  fastify.decorate(options.decorator, cache)

  installHttpCache(fastify, { engine: live, namespace: (name) => namespaces.get(name) })

  fastify.addHook('onClose', async () => {
    live.stop()
    l1.clear()
    await bus?.close()
  })
}

export const headroomCache = fp(plugin, { fastify: '5.x', name: '@headroom/cache' })
export default headroomCache

export { normalizeOptions } from './options.js'
export {
  DEFAULT_TTL_MS, DEFAULT_HARD_TIMEOUT_MS, DEFAULT_PREFIX, DEFAULT_L1_MAX_BYTES, DEFAULT_L1_MAX_ENTRIES,
  DEFAULT_L1_MAX_ENTRY_BYTES, DEFAULT_L1_MAX_TTL_MS, DEFAULT_REPLAY_LIMIT, DEFAULT_DECORATOR, BUILTIN_NAMESPACES,
  type CacheOptions, type CachePolicy, type NamespaceOptions, type L1Options, type RouteCacheOptions
} from './options.js'
export type { Namespace, UserNamespace, UserScope, CacheOperations, WrapOptions, SetOptions } from './namespace.js'
export type { Factory, FactoryContext } from './engine.js'
export * as errors from './errors.js'
