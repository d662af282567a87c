import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import fastifyRateLimit, { type CreateRateLimitOptions } from '@fastify/rate-limit'
import { findRedis, getHub, RedisGuard } from '@headroom/core'
import { normalizeOptions, type HeadroomRateLimitOptions, type Policy } from './options.js'
import { QuotaExceeded, StoreUnavailable } from './errors.js'
import { Engine, type StoreResult } from './store.js'
import { clientIdentity, skipper } from './identity.js'
import { RouteResolver, type RouteLimit } from './routes.js'
import { quotaExceeded, setHeaders, storeUnavailable } from './headers.js'
import { createMetrics, type Tally } from './metrics.js'

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
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>
type LimitResult = Awaited<ReturnType<Limiter>>
interface ResolvedRoute extends RouteLimit {
  limiter: Limiter
  allowed: Tally
  limited: Tally
}

const OWNER = '@headroom/ratelimit'

const plugin: FastifyPluginAsync<HeadroomRateLimitOptions> = async (fastify, opts) => {
  const options = normalizeOptions(opts)
  const hub = getHub(fastify)
  const metrics = createMetrics(hub.registry)
  metrics.fallbackActive.set(0)

  const client = findRedis(fastify, options.redis)
  const guard = client
    ? new RedisGuard(client, {
      name: 'ratelimit',
      ...(options.commandTimeoutMs !== undefined && { commandTimeoutMs: options.commandTimeoutMs }),
      ...(options.failureThreshold !== undefined && { failureThreshold: options.failureThreshold }),
      ...(options.resetTimeoutMs !== undefined && { resetTimeoutMs: options.resetTimeoutMs }),
      onStateChange (state) {
        if (state === 'open') {
          metrics.fallbackActive.set(1)
          fastify.log.warn({ onStoreDown: options.onStoreDown }, 'rate limit: Redis unreachable, store-down policy applies')
        } else if (state === 'closed') {
          metrics.fallbackActive.set(0)
          fastify.log.info('rate limit: Redis is back, shared limits apply again')
        }
      }
    })
    : null
  const engine = new Engine({
    guard,
    prefix: options.prefix,
    onStoreDown: options.onStoreDown,
    localDivisor: options.localDivisor,
    localMaxKeys: options.localMaxKeys,
    blockMaxKeys: options.blockMaxKeys,
    events: { onDecided: (policy, source, n) => metrics.fallback.labels(policy.name, source).inc(n) }
  })

  if (guard) {
    hub.addCheck({
      name: 'redis:ratelimit',
      owner: OWNER,
      critical: false,
      check: async () => {
        if (guard.healthy && guard.client.status === 'ready') return { status: 'pass' }
        const status = options.onStoreDown === 'closed' ? 'fail' : 'warn'
        return { status, output: `Redis unreachable (client ${guard.client.status}); onStoreDown: ${options.onStoreDown}` }
      }
    })
  }

  // @fastify/rate-limit runs in a context of its own: we use its store
  // contract and createRateLimit(), not its route hooks, so its onRoute
  // handling of config.rateLimit never doubles ours.
  let createRateLimit: FastifyInstance['createRateLimit'] | undefined
  await fastify.register(async (child) => {
    class HeadroomStore {
      readonly policy: Policy
      constructor (params: { headroomPolicy?: Policy }) {
        this.policy = params.headroomPolicy ?? options.defaultPolicy
      }

      incr (key: string, cb: (err: Error | null, result?: StoreResult) => void): void {
        engine.take(this.policy, key, cb)
      }

      child (params: { headroomPolicy?: Policy }): HeadroomStore {
        return new HeadroomStore(params)
      }
    }
    // The store contract types child() with route options; ours reads the policy createRateLimit() passes through.
    await child.register(fastifyRateLimit, { global: false, store: HeadroomStore as unknown as CreateRateLimitOptions['store'], skipOnError: false })
    createRateLimit = child.createRateLimit
  })

  const identity = clientIdentity(options)
  const skip = skipper(options)
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
    const limiter = (createRateLimit as FastifyInstance['createRateLimit'])({
      max: policy.limit,
      timeWindow: policy.windowMs,
      keyGenerator: keyOf,
      headroomPolicy: policy
    } as CreateRateLimitOptions)
    return {
      ...limit,
      limiter,
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
    const handler: onRequestAsyncHookHandler = function (request, reply) {
      return check(resolved, request, reply)
    }
    const existing = route[resolved.hook]
    route[resolved.hook] = (existing === undefined
      ? [handler]
      : [...(Array.isArray(existing) ? existing : [existing]), handler]) as typeof existing
  })

  // Unmatched URLs (scanners, typos) have no route: count them with the default policy.
  fastify.addHook('onRequest', function (request, reply, done) {
    if (!request.is404) {
      done()
      return
    }
    check(defaultRoute, request, reply).then(() => { if (!reply.sent) done() }, done)
  })

  /** Resolves to `reply` when it answered the request (429/503), as Fastify's async hooks expect. */
  async function check (route: ResolvedRoute, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (skip(request)) return
    const { policy } = route
    let result: LimitResult
    try {
      result = await route.limiter(request)
    } catch (err) {
      if (!(err instanceof StoreUnavailable)) throw err
      if (options.onStoreDown === 'open') {
        metrics.fallback.labels(policy.name, 'open').inc()
        return
      }
      metrics.fallback.labels(policy.name, 'closed').inc()
      const problem = storeUnavailable(err.code)
      return reply.code(503).header('retry-after', 1).type('application/problem+json').send(problem)
    }
    if (result.isAllowed) return
    setHeaders(reply, policy, result.remaining, result.ttlInSeconds, options.legacyHeaders, options.headers)
    if (!result.isExceeded) {
      route.allowed.n++
      return
    }
    route.limited.n++
    const problem = quotaExceeded(policy, result.ttlInSeconds, new QuotaExceeded(policy.name, result.ttlInSeconds).code)
    return reply.code(429).header('retry-after', result.ttlInSeconds).type('application/problem+json').send(problem)
  }

  fastify.decorate('headroomRateLimit', {
    policies: () => resolver.policies(),
    get mode () {
      if (!guard) return 'local' as const
      return guard.healthy && guard.client.status === 'ready' ? 'redis' as const : 'fallback' as const
    }
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
