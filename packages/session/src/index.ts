import fastifyCookie from '@fastify/cookie'
import type {} from '@fastify/session'
import { useRedis } from '@headroom/core'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { CachingSigner } from './signer.js'
import { createMetrics } from './metrics.js'
import { MAX_PROBE_BACKOFF_MS, normalizeOptions, type SessionOptions } from './options.js'
import { kLoadedExpiry, Session, type Cookie, type CookieInit, type SessionContext } from './session.js'
import { HeadroomStore, type UserSession } from './store.js'

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

  const { cookieName, maxAge, touchAfter } = options
  const signer = new CachingSigner(options.secrets, options.fallbackMax)
  const cookieOpts: CookieInit = {
    maxAge,
    path: options.cookie.path,
    ...(options.cookie.domain !== undefined ? { domain: options.cookie.domain } : {}),
    sameSite: options.cookie.sameSite,
    secure: options.cookie.secure,
    httpOnly: options.cookie.httpOnly,
    partitioned: options.cookie.partitioned
  }
  // during a Cluster master's failover, new sessions (logins) get an id whose slot a live master serves
  const context: SessionContext = { store: store as SessionContext['store'], signer, newId: store.newId, cookie: cookieOpts }
  const cookiePath = options.cookie.path

  // request.session: what the cookie names, read from the store, else a new (unsaved) session
  const load = (value: string | undefined, request: FastifyRequest, opts: CookieInit, done: (err?: Error) => void): void => {
    const unsigned = value ? signer.unsign(value) : null
    if (unsigned === null || !unsigned.valid || unsigned.value === null) {
      request.session = new Session(context, request, opts) as never
      done()
      return
    }
    const id = unsigned.value
    store.get(id, (err, stored) => {
      if (err) {
        // the store answers null, never an error: this is the contract's ENOENT, kept for custom stores
        if ((err as { code?: string }).code !== 'ENOENT') return done(err)
        stored = null
      }
      if (!stored) {
        request.session = new Session(context, request, opts) as never
        done()
        return
      }
      // a cookie signed by an older secret gets the newest signature (re-issued in onSend)
      const session = new Session(context, request, opts, stored as never, id, unsigned.renew ? undefined : value)
      const expiry = session[kLoadedExpiry]
      if (expiry !== undefined && expiry <= Date.now()) {
        session.regenerate((e) => done(e ?? undefined))
        return
      }
      request.session = session as never
      done()
    })
  }

  fastify.decorate('decryptSession', (value: string, request: FastifyRequest, opts: CookieInit | ((err?: Error) => void), callback?: (err?: Error) => void) => {
    if (typeof opts === 'function') load(value, request, cookieOpts, opts)
    else load(value, request, { ...cookieOpts, ...opts }, callback as (err?: Error) => void)
  })
  fastify.decorateRequest('sessionStore', { getter: () => store as never })
  fastify.decorateRequest('session', null as never)

  const onRequest: onRequestHookHandler = (request, _reply, done) => {
    request.session = {} as never
    if (!onPath(request.raw.url ?? '/', cookiePath)) {
      done()
      return
    }
    load(request.cookies[cookieName], request, cookieOpts, done)
  }

  const sendCookie = (request: FastifyRequest, reply: FastifyReply) => {
    const session = request.session
    // the attributes, not the Cookie object (whose expiry lives behind accessors), as @fastify/session sends them
    reply.setCookie(cookieName, session.encryptedSessionId, (session.cookie as unknown as Cookie).toJSON() as never)
  }

  // A Secure cookie is neither saved nor sent on a request that arrived over
  // http (as @fastify/session does): behind a TLS-terminating proxy that does
  // not send X-Forwarded-Proto (or is not trusted), every login "works" and
  // the next request is logged out. Say so, once per instance.
  let warnedInsecure = false
  const warnInsecure = (request: FastifyRequest) => {
    warnedInsecure = true
    log.warn({ protocol: request.protocol, hint: INSECURE_COOKIE_HINT }, 'a Secure session cookie was not sent because this request arrived over http; logged once per instance')
  }

  // Saves a modified session (only that: rolling false, saveUninitialized false), then extends
  // the TTL of an unchanged one once `touchAfter` has passed, and keeps the cookie in step.
  const onSend: onSendHookHandler = (request, reply, _payload, done) => {
    const session = request.session as unknown as Session | null
    const sent = request.cookies?.[cookieName]
    if (session === null) {
      // destroyed in this request: the browser forgets the id too
      // a request refused before @fastify/cookie's hook ran (load shedding) has no parsed cookies
      if (sent !== undefined) reply.clearCookie(cookieName, { path: cookiePath, domain: options.cookie.domain })
      done()
      return
    }
    if (!(session instanceof Session)) {
      // outside the cookie's path: no session
      done()
      return
    }
    const modified = session.isModified()
    const insecure = session.secureCookie === true && request.protocol !== 'https'
    if (!modified || insecure) {
      if (insecure && modified && !warnedInsecure) warnInsecure(request)
      if (sent && sent !== session.encryptedSessionId) reply.clearCookie(cookieName, { domain: options.cookie.domain, path: cookiePath })
      if (session.isSaved()) sendCookie(request, reply)
      touch(request, reply, session, sent, done)
      return
    }
    session.save((err) => {
      if (err) return done(err)
      sendCookie(request, reply)
      done()
    })
  }

  const touch = (request: FastifyRequest, reply: FastifyReply, session: Session, sent: string | undefined, done: (err?: Error) => void): void => {
    const loadedExpiry = session[kLoadedExpiry]
    if (loadedExpiry === undefined || session.isSaved()) {
      done()
      return
    }
    // a cookie signed by an older (still accepted) secret was cleared above: re-issue it signed by the newest
    const resign = sent !== session.encryptedSessionId
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

  fastify.addHook('onRequest', onRequest)
  fastify.addHook('onSend', onSend)

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

/** @fastify/session's path match: the cookie's path, or below it */
function onPath (url: string, cookiePath: string): boolean {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  if (path === cookiePath) return true
  if (path.length <= cookiePath.length || !path.startsWith(cookiePath)) return false
  return path[cookiePath.length] === '/' || cookiePath.endsWith('/')
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
