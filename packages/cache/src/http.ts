import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { makeEntry, MAX_KEY_LENGTH, type Entry } from './entry.js'
import type { Engine, Fill, Target } from './engine.js'
import { InvalidKey, InvalidOption, InvalidUser, UnknownNamespace, UserRequired } from './errors.js'
import { RouteFlights, type RouteFlight } from './flights.js'
import type { PerUserNamespace, SharedNamespace } from './namespace.js'
import { resolvePolicy, type RouteCacheOptions } from './options.js'
import { annotateRequest } from './tracing.js'

/** What a cached response is: status, content type and the serialized body. */
interface StoredResponse { s: number, t: string | undefined, b: string }

interface Pending {
  target: Target
  gens: Promise<string[] | null>
  cacheControl: string
  /** this request leads the key's flight: its waiters get what it stores */
  flight: RouteFlight | undefined
  /** the cross-instance lease this request holds (`lease: true` namespaces) */
  fence: string
  /** marked by an invalidation of the key while the handler runs: the response is then not stored */
  fill: Fill
}

const kPending = Symbol('headroom.cache.pending')
type Req = FastifyRequest & { [kPending]?: Pending }

export interface HttpDeps {
  engine: Engine
  namespace (name: string): SharedNamespace | PerUserNamespace | undefined
}

function etagMatches (header: string | undefined, etag: string): boolean {
  if (!header) return false
  if (header.trim() === '*') return true
  for (const part of header.split(',')) {
    const tag = part.trim()
    if (tag === etag || tag === `W/${etag}`) return true
  }
  return false
}

/** A response the cache may store and share: 2xx, a string body, no cookie, nothing the handler marked as not shareable. */
function cacheable (reply: FastifyReply, payload: unknown, perUser: boolean): boolean {
  const status = reply.statusCode
  if (status < 200 || status > 299 || reply.hasHeader('set-cookie') || typeof payload !== 'string') return false
  const cc = reply.getHeader('cache-control')
  if (typeof cc !== 'string') return true
  return !/\bno-store\b/i.test(cc) && (perUser || !/\bprivate\b/i.test(cc))
}

/**
 * Response caching for routes with `config: { cache }`: a preHandler answers
 * from the cache (304 when If-None-Match holds the entry's version) and an
 * onSend stores what the handler produced, if it is cacheable (see above).
 * Concurrent misses of a key coalesce: one request runs the handler, the
 * others wait (at most the policy's hard timeout) and answer from what it
 * stored, or run their own handler if it stored nothing. With `lease: true`
 * that holds across instances. Per-user routes key by the user and answer
 * `Cache-Control: private`.
 */
export function installHttpCache (fastify: FastifyInstance, deps: HttpDeps): void {
  const flights = new RouteFlights()
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const option = (route.config as { cache?: RouteCacheOptions | boolean } | undefined)?.cache
    if (option === undefined || option === false) return
    const rc: RouteCacheOptions = option === true ? {} : option
    const where = `config.cache of ${String(route.method)} ${route.url}`
    if (typeof rc !== 'object' || rc === null) throw new InvalidOption(where, 'must be true, false or an object')
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    if (methods.some((m) => m !== 'GET' && m !== 'HEAD')) throw new InvalidOption(where, 'only GET routes can be cached')
    // the HEAD twin Fastify adds to a GET route is left uncached: one writer per key
    if (methods.includes('HEAD')) return
    if (rc.user !== undefined && typeof rc.user !== 'function') throw new InvalidOption(`${where}.user`, 'must be a function (request) => user id')
    if (rc.key !== undefined && typeof rc.key !== 'function') throw new InvalidOption(`${where}.key`, 'must be a function (request) => string')
    if (rc.tags !== undefined && typeof rc.tags !== 'function') throw new InvalidOption(`${where}.tags`, 'must be a function (request) => string[]')
    const nsName = rc.namespace ?? (rc.user ? 'http-user' : 'http')
    const ns = deps.namespace(nsName)
    if (!ns) throw new UnknownNamespace(nsName)
    if (ns.perUser && !rc.user) throw new UserRequired(nsName, `route ${route.url} must set config.cache.user`)
    if (!ns.perUser && rc.user) throw new InvalidOption(`${where}.user`, `namespace "${nsName}" is shared; per-user responses need a per-user namespace such as "http-user"`)
    const policy = resolvePolicy(`${where}.policy`, rc.policy, ns.ns)
    const cacheControl = rc.cacheControl ?? (ns.perUser ? 'private, no-cache' : `public, max-age=${Math.floor(policy.ttl / 1000)}`)

    const targetOf = (request: FastifyRequest): Target | undefined => {
      let scope: SharedNamespace
      if (ns.perUser) {
        const user = rc.user!(request)
        if (user === null || user === undefined || user === '') return undefined
        scope = ns.forUser(user) as unknown as SharedNamespace
      } else {
        scope = ns
      }
      const key = rc.key ? rc.key(request) : request.url
      if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) return undefined
      return scope.routeTarget(key, policy, rc.tags ? rc.tags(request) : undefined)
    }

    // callback style: an L1 hit answers without a promise in sight; only a miss goes async (L2)
    const preHandler = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
      let target: Target | undefined
      try {
        target = targetOf(request)
      } catch (err) {
        // a key, user or tags this request makes invalid (too long, empty): answered uncached, never a 500
        if (!(err instanceof InvalidKey) && !(err instanceof InvalidUser)) return done(err as Error)
        request.log.warn({ code: (err as { code?: string }).code, route: route.url }, '@headroom/cache: this request\'s cache key is invalid; answered without the cache')
        return done()
      }
      if (target === undefined) return done()
      const entry = deps.engine.peek(target)
      if (entry !== undefined) {
        annotateRequest(target, 'l1', false)
        hit(request, reply, entry, cacheControl)
        return
      }
      const t = target
      deps.engine.lookupL2(t).then((found) => {
        if (found !== undefined) {
          annotateRequest(t, 'l2', false)
          hit(request, reply, found, cacheControl)
          return
        }
        const running = flights.running(t.key)
        if (running === undefined) return lead(request, reply, t, done)
        t.metrics.coalescedProcess.inc()
        RouteFlights.wait(running, t.policy.hardTimeout).then((entry) => {
          if (entry === undefined) return miss(request, t, undefined, done)
          // what another request of this process produced
          annotateRequest(t, 'miss', true)
          hit(request, reply, entry, cacheControl)
        }, done)
      }, done)
    }

    const miss = (request: FastifyRequest, t: Target, flight: RouteFlight | undefined, done: (err?: Error) => void, fence = ''): void => {
      annotateRequest(t, 'miss', false)
      ;(request as Req)[kPending] = { target: t, gens: deps.engine.generations(t), cacheControl, flight, fence, fill: deps.engine.fill(t) }
      done()
    }

    // the first miss of a key in this process: on a lease namespace, the first across instances too
    const lead = (request: FastifyRequest, reply: FastifyReply, t: Target, done: (err?: Error) => void): void => {
      const flight = flights.start(t.key)
      if (!ns.ns.lease) return miss(request, t, flight, done)
      deps.engine.lease(t).then((outcome) => {
        if (outcome.entry === undefined) return miss(request, t, flight, done, outcome.fence)
        flight.settle(outcome.entry)
        // another instance held the lease and stored it
        annotateRequest(t, 'l2', true)
        hit(request, reply, outcome.entry, cacheControl)
      }, () => miss(request, t, flight, done))
    }

    const onSend = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void => {
      const pending = (request as Req)[kPending]
      if (!pending) return done(null, payload)
      ;(request as Req)[kPending] = undefined
      if (!cacheable(reply, payload, ns.perUser)) {
        // never shared: the waiters run their own handler, and another instance may take the lease
        abandon(pending)
        return done(null, payload)
      }
      const type = reply.getHeader('content-type')
      const stored: StoredResponse = { s: reply.statusCode, t: typeof type === 'string' ? type : undefined, b: payload as string }
      const entry = makeEntry(JSON.stringify(stored), pending.target.policy, pending.target.tags, deps.engine.now())
      entry.decoded = stored
      reply.header('etag', `"${entry.version}"`).header('cache-control', pending.cacheControl).header('x-cache', 'miss')
      pending.gens.then((gens) => {
        deps.engine.put(pending.target, entry, gens, pending.fence, pending.fill)
        // invalidated meanwhile: waiters (some began after the write) run their own handler
        pending.flight?.settle(pending.fill.poisoned ? undefined : entry)
        done(null, payload)
      }, () => {
        abandon(pending)
        done(null, payload)
      })
    }

    // a request that ends without onSend (hijacked, aborted) must not leave its waiters or its lease behind
    const onResponse = (request: FastifyRequest, _reply: FastifyReply, done: () => void): void => {
      const pending = (request as Req)[kPending]
      if (pending) {
        ;(request as Req)[kPending] = undefined
        abandon(pending)
      }
      done()
    }

    const abandon = (pending: Pending): void => {
      pending.flight?.settle()
      deps.engine.release(pending.target, pending.fence, pending.fill)
    }

    route.preHandler = append(route.preHandler, preHandler)
    route.onSend = append(route.onSend, onSend)
    route.onResponse = append(route.onResponse, onResponse)
  })
}

function append<H> (hooks: H | H[] | undefined, hook: H): H[] {
  return hooks === undefined ? [hook] : [...(Array.isArray(hooks) ? hooks : [hooks]), hook]
}

function hit (request: FastifyRequest, reply: FastifyReply, entry: Entry, cacheControl: string): FastifyReply {
  const etag = `"${entry.version}"`
  reply.header('etag', etag).header('cache-control', cacheControl).header('x-cache', 'hit')
  if (etagMatches(request.headers['if-none-match'], etag)) return reply.code(304).send()
  const stored = (entry.decoded ??= JSON.parse(entry.raw)) as StoredResponse
  if (stored.t !== undefined) reply.header('content-type', stored.t)
  return reply.code(stored.s).send(stored.b)
}
