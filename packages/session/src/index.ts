import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { useRedis } from '@headroom/core'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { encode } from './codec.js'
import { CachingSigner } from './signer.js'
import { createMetrics } from './metrics.js'
import { MAX_PROBE_BACKOFF_MS, normalizeOptions, type SessionOptions } from './options.js'
import { HeadroomStore, kSnapshot, type UserSession } from './store.js'

/**
 * The data a session holds. Extend it to type your own fields:
 * `declare module '@headroom/session' { interface SessionData { cart: string[] } }`.
 */
export interface SessionData {
  /**
   * The signed-in user. Setting it (after `await request.session.regenerate()`)
   * adds the session to that user's index, which `fastify.sessions.list()` and
   * `fastify.sessions.destroyUser()` read.
   */
  userId?: string
}

/** What the app uses beyond `request.session`: the per-user index and the store's state. */
export interface SessionManager {
  /** a user's live sessions: one ZRANGE and one HGETALL per session of theirs; rejects with `HEADROOM_SESSION_UNAVAILABLE` (503, Retry-After) while Redis is unavailable, never a partial list */
  list (userId: string): Promise<UserSession[]>
  /**
   * Logs a user out everywhere, except the session id `options.except` (e.g.
   * `request.session.sessionId` to keep the current device): O(that user's
   * sessions). Returns how many were destroyed. While Redis is unavailable it destroys the
   * user's sessions this instance holds, then rejects with `HEADROOM_SESSION_UNAVAILABLE`
   * (503, Retry-After): it never reports success while a session of the user may survive.
   */
  destroyUser (userId: string, options?: { except?: string }): Promise<number>
  /** destroys one session by its (unsigned) id, e.g. one listed by `list()` */
  destroy (sessionId: string): Promise<void>
  /** true while sessions live in this instance's memory because Redis is unavailable */
  readonly fallbackActive: boolean
  /** the hot sessions held, and whether the invalidation bus is subscribed (no hot read while it is not); null when off or without Redis */
  readonly hot: { size: number, connected: boolean } | null
}

declare module 'fastify' {
  interface Session extends SessionData {}
  interface FastifyInstance {
    sessions: SessionManager
  }
}

/** What to do when a Secure cookie meets a plain-http request (in the warning, and documented in the README). */
export const INSECURE_COOKIE_HINT = 'behind a TLS-terminating proxy, make it send X-Forwarded-Proto: https and trust it with Fastify\'s trustProxy (its addresses); serve https yourself; or use cookie.secure: \'auto\' outside production'

/** set on a session read from the store: the expiry it had when the request started */
const kLoadedExpiry = Symbol('headroom.session.loadedExpiry')

type Stateful = Record<symbol, unknown> & { cookie?: { originalExpires?: Date } }

const plugin: FastifyPluginAsync<SessionOptions> = async (fastify, opts) => {
  const options = normalizeOptions(opts)
  const log = fastify.log.child({ plugin: '@headroom/session' })
  if (options.generatedSecret) log.warn('no `secret` configured: a random one signs cookies, so sessions end with this process')

  // the probe is the only caller while the store is on its fallback: its back-off is capped low, so recovery follows Redis within seconds
  const redis = useRedis(fastify, {
    name: 'session',
    owner: '@headroom/session',
    option: options.redis,
    commandTimeoutMs: options.commandTimeoutMs,
    resetTimeoutMs: options.probeIntervalMs,
    maxResetTimeoutMs: Math.max(options.probeIntervalMs, MAX_PROBE_BACKOFF_MS),
    withoutClient: 'no Redis configured: in-memory sessions on this instance',
    check: async () => {
      // the store's own outage tracking (per Cluster node), not the guard's circuit, decides the fallback
      if (store.fallbackActive) {
        return { status: 'warn', output: 'Redis unavailable: sessions are served from this instance\'s memory', observedValue: store.pending, observedUnit: 'sessions to write back' }
      }
      return { status: 'pass' }
    }
  })
  const { client, guard } = redis
  if (!client) log.warn('no Redis client (option `redis` or @fastify/redis): sessions live in this process\'s memory only')
  const metrics = createMetrics(redis.hub.registry)
  const store = new HeadroomStore({
    client,
    guard,
    keyPrefix: options.keyPrefix,
    maxAge: options.maxAge,
    maxSize: options.maxSize,
    fallbackMax: options.fallbackMax,
    probeIntervalMs: options.probeIntervalMs,
    maxProbeIntervalMs: MAX_PROBE_BACKOFF_MS,
    hot: options.hot,
    log,
    metrics
  })

  await store.start(options.connectTimeoutMs)

  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)
  await fastify.register(fastifySession, {
    secret: new CachingSigner(options.secrets, options.fallbackMax),
    // the contract's types want @fastify/session's own Session class; the store reads plain data
    store: store as never,
    // during a Cluster master's failover, new sessions (logins) get an id whose slot a live master serves
    idGenerator: store.newId,
    cookieName: options.cookieName,
    // an unchanged session is neither saved nor re-sent; the TTL is extended by touch below
    saveUninitialized: false,
    rolling: false,
    cookie: {
      maxAge: options.maxAge,
      path: options.cookie.path,
      ...(options.cookie.domain !== undefined ? { domain: options.cookie.domain } : {}),
      sameSite: options.cookie.sameSite,
      secure: options.cookie.secure,
      httpOnly: options.cookie.httpOnly,
      partitioned: options.cookie.partitioned
    }
  })

  const { cookieName, maxAge, touchAfter } = options

  // Runs after @fastify/session's onRequest: remembers what the request read,
  // so a save writes only the fields this request changed.
  const remember: onRequestHookHandler = (request, _reply, done) => {
    const session = request.session as unknown as Stateful | null
    const expires = session?.cookie?.originalExpires
    if (session && expires instanceof Date) {
      session[kSnapshot] = encode(session)
      session[kLoadedExpiry] = expires.getTime()
    }
    done()
  }

  const sendCookie = (request: FastifyRequest, reply: FastifyReply) => {
    const session = request.session
    reply.setCookie(cookieName, session.encryptedSessionId, session.cookie as never)
  }

  // @fastify/session neither saves nor sends a Secure cookie on a request
  // that arrived over http, and says nothing: behind a TLS-terminating proxy
  // that does not send X-Forwarded-Proto (or is not trusted), every login
  // "works" and the next request is logged out. Say so, once per instance.
  let warnedInsecure = false
  const warnInsecure = (request: FastifyRequest) => {
    warnedInsecure = true
    log.warn({ protocol: request.protocol, hint: INSECURE_COOKIE_HINT }, 'a Secure session cookie was not sent because this request arrived over http; logged once per instance')
  }

  // Runs after @fastify/session's onSend, which saved a modified session.
  const touch: onSendHookHandler = (request, reply, _payload, done) => {
    const session = request.session as typeof request.session | null
    if (!warnedInsecure && session !== null && session.cookie.secure === true && request.protocol !== 'https' && session.isModified()) {
      warnInsecure(request)
    }
    if (session === null) {
      // destroyed in this request: the browser forgets the id too
      // a request refused before @fastify/cookie's hook ran (load shedding) has no parsed cookies
      if (request.cookies?.[cookieName] !== undefined) reply.clearCookie(cookieName, { path: options.cookie.path, domain: options.cookie.domain })
      done()
      return
    }
    const loadedExpiry = (session as unknown as Stateful)[kLoadedExpiry] as number | undefined
    if (loadedExpiry === undefined || session.isSaved()) {
      done()
      return
    }
    // @fastify/session clears a cookie signed by an older (still accepted) secret; re-issue it signed by the newest
    const resign = request.cookies?.[cookieName] !== session.encryptedSessionId
    if (loadedExpiry - Date.now() > maxAge - touchAfter) {
      if (resign) sendCookie(request, reply)
      done()
      return
    }
    store.touch(session.sessionId, session.userId === undefined ? undefined : String(session.userId)).then(() => {
      session.touch()
      sendCookie(request, reply)
      done()
    }, done)
  }

  fastify.addHook('onRequest', remember)
  fastify.addHook('onSend', touch)

  const manager: SessionManager = {
    list: (userId) => store.listUser(String(userId)),
    destroyUser: (userId, o) => store.destroyUser(String(userId), o?.except),
    destroy: (sessionId) => new Promise<void>((resolve) => store.destroy(sessionId, () => resolve())),
    get fallbackActive () { return store.fallbackActive },
    get hot () { return store.hot }
  }
  fastify.decorate('sessions', manager)

  fastify.addHook('onClose', async () => {
    await store.close()
  })
}

export const headroomSession = fp(plugin, {
  fastify: '5.x',
  name: '@headroom/session'
})
export default headroomSession

export * as errors from './errors.js'
export { secretWeakness, SECRET_PLACEHOLDERS } from './secrets.js'
export { HeadroomStore, type UserSession } from './store.js'
export {
  normalizeOptions,
  DEFAULT_KEY_PREFIX, DEFAULT_COOKIE_NAME, DEFAULT_MAX_AGE_MS, DEFAULT_TOUCH_AFTER_RATIO,
  DEFAULT_MAX_SIZE, DEFAULT_FALLBACK_MAX, DEFAULT_HOT_MAX, DEFAULT_HOT_MAX_AGE_MS, DEFAULT_PROBE_INTERVAL_MS, DEFAULT_CONNECT_TIMEOUT_MS, MIN_SECRET_LENGTH,
  type SessionOptions, type SessionCookieOptions, type SameSite
} from './options.js'
