import type { FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { recordingSpan, useRedis } from '@headroom/core'
import type { Span } from '@opentelemetry/api'
import { makePolicy, normalizeOptions, type HeadroomRateLimitOptions, type Policy } from './options.js'
import { InvalidOption, QuotaExceeded, StoreUnavailable } from './errors.js'
import { Engine, storeClass, type FastifyRateLimitStoreClass, type StoreResult } from './store.js'
import { clientIdentity, skipper as makeSkipper } from './identity.js'
import { RouteResolver, type RouteLimit } from './routes.js'
import { quotaExceeded, setHeaders, storeUnavailable } from './headers.js'
import { createMetrics, type Tally } from './metrics.js'
import { annotate } from './tracing.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** @headroom/ratelimit's policies and store state, for diagnostics */
    headroomRateLimit: RateLimitHandle
  }
}

export interface RateLimitHandle {
  /** every policy in use: the default, the named ones, the groups routes created */
  policies (): Policy[]
  /** 'redis' while Redis decides, 'fallback' while the store-down policy applies, 'local' without Redis */
  readonly mode: 'redis' | 'fallback' | 'local'
  /**
   * This plugin's store for @fastify/rate-limit's `store` option, if you want
   * its API (`fastify.rateLimit()`, `createRateLimit()`) on the same shared,
   * accurate counter: `max`/`timeWindow` become a policy named after the route.
   */
  readonly Store: FastifyRateLimitStoreClass
  /**
   * The failures counted under the named policy `policy` for `key`, without
   * counting anything: check it before the expensive work (a password hash)
   * and refuse at once when `blocked`.
   */
  peek (policy: string, key: string): Promise<Usage>
  /**
   * Counts `n` (default 1) under the named policy for `key`, e.g. a failed
   * login; the count stops at the policy's limit and ages out over its
   * window like requests do.
   */
  charge (policy: string, key: string, n?: number): Promise<Usage>
  /** Forgets `key` under the named policy (e.g. after a successful login). */
  reset (policy: string, key: string): Promise<void>
  /** The request's address as the default identity counts it (`ip:<address>`, IPv6 by its `ipv6Subnet` prefix), ignoring `identify`. */
  address (request: FastifyRequest): string
}

/** A count under a named policy, as `peek` and `charge` report it. */
export interface Usage {
  /** counted in the rolling window (at most the policy's limit) */
  count: number
  /** how many of this call's `n` were counted (fewer when the limit was reached; 0 for `peek`): 0 of 1 means refuse it */
  counted: number
  limit: number
  remaining: number
  /** true when count has reached the limit: refuse, and send `retryAfterS` as Retry-After */
  blocked: boolean
  /** seconds until the count next drops; never more than the window */
  retryAfterS: number
  /** who counted: 'redis', 'local' (no Redis, or its fallback), 'open' (Redis down, onStoreDown 'open': nothing counted) */
  source: 'redis' | 'local' | 'open'
}

interface ResolvedRoute extends RouteLimit {
  keyOf: (request: FastifyRequest) => string | number | Promise<string | number>
  allowed: Tally
  limited: Tally
}

const OWNER = '@headroom/ratelimit'

/**
 * Whole seconds for `Retry-After` and `t=`: rounded up, and never more than
 * the window (the count frees at most W + 1 ms after the last admission;
 * the extra millisecond must not become an extra second).
 */
export function secondsOf (ms: number, policy: Policy): number {
  return Math.max(1, Math.min(Math.ceil(ms / 1000), Math.ceil(policy.windowMs / 1000)))
}
const QUOTA_EXCEEDED_CODE = new QuotaExceeded('', 0).code

const plugin: FastifyPluginAsync<HeadroomRateLimitOptions> = async (fastify, opts) => {
  const options = normalizeOptions(opts)
  const redis = useRedis(fastify, {
    name: 'ratelimit',
    owner: OWNER,
    option: options.redis,
    commandTimeoutMs: options.commandTimeoutMs,
    failureThreshold: options.failureThreshold,
    resetTimeoutMs: options.resetTimeoutMs,
    onStateChange (state) {
      if (state === 'open') {
        fastify.log.warn({ onStoreDown: options.onStoreDown }, 'rate limit: Redis unreachable, store-down policy applies')
      } else if (state === 'closed') {
        fastify.log.info('rate limit: Redis is back, shared limits apply again')
      }
    },
    check: async ({ ready, client }) => {
      if (ready) return { status: 'pass' }
      const status = options.onStoreDown === 'closed' ? 'fail' : 'warn'
      return { status, output: `Redis unreachable (client ${client.status}); onStoreDown: ${options.onStoreDown}` }
    }
  })
  const { guard } = redis
  // `mode` is read when /metrics is scraped, after registration
  const metrics = createMetrics(redis.hub.registry, () => mode() === 'fallback')

  /** where decisions are made: 'fallback' from the first failed command until the circuit closes, or while the client is not connected */
  function mode (): 'local' | 'redis' | 'fallback' {
    if (!guard) return 'local'
    return redis.ready ? 'redis' : 'fallback'
  }
  const engine = new Engine({
    guard,
    prefix: options.prefix,
    onStoreDown: options.onStoreDown,
    localDivisor: options.localDivisor,
    localMaxKeys: options.localMaxKeys,
    blockMaxKeys: options.blockMaxKeys,
    events: { onDecided: (policy, source, n) => metrics.fallback.labels(policy.name, source).inc(n) }
  })

  const identity = clientIdentity(options)
  const skipper = makeSkipper(options)
  const resolver = new RouteResolver(options)

  function prepare (limit: RouteLimit): ResolvedRoute {
    const { policy, keyGenerator } = limit
    const keyOf = keyGenerator ??
      (policy.key
        ? (request: FastifyRequest) => {
            const client = identity(request)
            return (policy.key as NonNullable<Policy['key']>)(request, client) ?? client
          }
        : identity)
    return {
      ...limit,
      keyOf,
      allowed: metrics.requests(policy.name, 'allowed'),
      limited: metrics.requests(policy.name, 'limited')
    }
  }

  const defaultRoute = prepare(resolver.default)

  // Route-level hooks, as @fastify/rate-limit adds them: each route pays only
  // for its own policy, in its own hook. Register this plugin before your routes.
  fastify.addHook('onRoute', (route) => {
    const limit = resolver.resolve(route.config, route.method, route.url)
    if (limit === null) return
    const resolved = limit.policy === defaultRoute.policy && limit.hook === defaultRoute.hook && !limit.keyGenerator
      ? defaultRoute
      : prepare(limit)
    const skip = skipper.forRoute(route.url)
    const handler: onRequestHookHandler = function (request, reply, done) {
      check(resolved, skip, request, reply, done)
    }
    const existing = route[resolved.hook]
    route[resolved.hook] = (existing === undefined
      ? [handler]
      : [...(Array.isArray(existing) ? existing : [existing]), handler]) as typeof existing
  })

  // Unmatched URLs (scanners, typos) have no route: count them with the default policy.
  fastify.addHook('onRequest', function (request, reply, done) {
    if (request.is404) check(defaultRoute, skipper.any, request, reply, done)
    else done()
  })

  /**
   * Callback style on purpose: with the in-process limiter the whole check is
   * synchronous, and an async hook's promises cost more than the check.
   * Calls `done()` to go on, or answers (429/503) and does not.
   */
  function check (route: ResolvedRoute, skip: (request: FastifyRequest) => boolean, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    let key: string | number | Promise<string | number>
    try {
      if (skip(request)) {
        done()
        return
      }
      key = route.keyOf(request)
    } catch (err) {
      done(err as Error)
      return
    }
    if (typeof key === 'object') {
      key.then((k) => { take(route, String(k), reply, done) }, done)
      return
    }
    take(route, typeof key === 'string' ? key : String(key), reply, done)
  }

  function take (route: ResolvedRoute, key: string, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    // the request's span, taken now: Redis calls are batched per key, and a
    // batch's callbacks run in the context of the request that sent it
    const span = recordingSpan()
    const local = engine.takeLocal(route.policy, key)
    if (local !== undefined) decide(route, reply, done, null, local, span)
    else engine.take(route.policy, key, (err, result) => { decide(route, reply, done, err, result, span) })
  }

  function decide (route: ResolvedRoute, reply: FastifyReply, done: HookHandlerDoneFunction, err: Error | null, result: StoreResult | undefined, span: Span | undefined): void {
    const { policy } = route
    if (err !== null || result === undefined) {
      if (!(err instanceof StoreUnavailable)) {
        done(err ?? new Error('rate-limit store returned nothing'))
        return
      }
      metrics.fallback.labels(policy.name, options.onStoreDown).inc()
      if (options.onStoreDown === 'open') {
        if (span !== undefined) annotate(span, policy, 'allowed', 'fallback', undefined)
        done()
        return
      }
      if (span !== undefined) annotate(span, policy, 'unavailable', 'fallback', undefined)
      reply.code(503).header('retry-after', 1).type('application/problem+json').send(storeUnavailable(err.code))
      return
    }
    const seconds = secondsOf(result.ttl, policy)
    const exceeded = result.current > policy.limit
    if (span !== undefined) annotate(span, policy, exceeded ? 'refused' : 'allowed', result.store ?? 'local', exceeded ? 0 : policy.limit - result.current)
    setHeaders(reply, policy, exceeded ? 0 : policy.limit - result.current, seconds, options.legacyHeaders, options.headers)
    if (!exceeded) {
      route.allowed.n++
      done()
      return
    }
    route.limited.n++
    const problem = quotaExceeded(policy, seconds, QUOTA_EXCEEDED_CODE)
    reply.code(429).header('retry-after', seconds).type('application/problem+json').send(problem)
  }

  const Store = storeClass(engine, (params) => {
    // never 'default': a store made from @fastify/rate-limit's own max must not share keys with our default policy
    const route = params.routeInfo?.url ? `${String(params.routeInfo.method)} ${String(params.routeInfo.url)}` : 'fastify-rate-limit'
    const name = typeof params.groupId === 'string' && params.groupId !== '' ? params.groupId : route
    return makePolicy('store', name, { limit: params.max, window: params.timeWindow }, {
      limit: options.defaultPolicy.limit,
      windowMs: options.defaultPolicy.windowMs,
      buckets: options.buckets,
      hook: options.hook
    })
  })

  const address = clientIdentity({ identify: undefined, ipv6Subnet: options.ipv6Subnet })
  function named (name: string): Policy {
    const policy = options.policies.get(name)
    if (policy === undefined) throw new InvalidOption(`policies.${name}`, `no such policy; peek/charge/reset take one of: ${[...options.policies.keys()].join(', ') || '(none configured)'}`)
    return policy
  }
  /** Thrown, not rejected: a wrong name or count is a programming error. */
  function usage (policy: Policy, key: string, n: number): Promise<Usage> {
    if (!Number.isInteger(n) || n < 0) throw new InvalidOption('charge', `expected an integer >= 0, got ${JSON.stringify(n)}`)
    return count(policy, key, n)
  }
  async function count (policy: Policy, key: string, n: number): Promise<Usage> {
    const take = await engine.use(policy, key, n)
    const count = Math.min(take.count, policy.limit)
    return {
      count,
      counted: take.admitted,
      limit: policy.limit,
      remaining: policy.limit - count,
      blocked: count >= policy.limit,
      retryAfterS: secondsOf(take.retryMs, policy),
      source: take.source === 'redis' || take.source === 'open' ? take.source : 'local'
    }
  }

  fastify.decorate('headroomRateLimit', {
    policies: () => resolver.policies(),
    Store,
    peek: (policy: string, key: string) => usage(named(policy), key, 0),
    charge: (policy: string, key: string, n = 1) => usage(named(policy), key, n),
    reset (policy: string, key: string) {
      return engine.reset(named(policy), key).then(() => {})
    },
    address,
    get mode () { return mode() }
  })
}

export const headroomRateLimit = fp(plugin, {
  fastify: '5.x',
  name: OWNER
})
export default headroomRateLimit

export * as errors from './errors.js'
export {
  normalizeOptions,
  parseWindow,
  DEFAULT_LIMIT,
  DEFAULT_WINDOW_MS,
  DEFAULT_BUCKETS,
  DEFAULT_IPV6_SUBNET,
  DEFAULT_PREFIX,
  DEFAULT_LOCAL_MAX_KEYS,
  DEFAULT_BLOCK_MAX_KEYS,
  DEFAULT_STATIC_PREFIXES,
  DEFAULT_STATIC_EXTENSIONS,
  DEFAULT_SKIP_PATHS,
  DEFAULT_SKIP_METHODS,
  type HeadroomRateLimitOptions,
  type PolicyOptions,
  type Policy,
  type StaticAssetOptions,
  type StoreDownPolicy,
  type RateLimitHookName
} from './options.js'
export { SLIDING_WINDOW_LUA, LocalWindow, type Take } from './window.js'
export { QUOTA_EXCEEDED_TYPE } from './headers.js'
