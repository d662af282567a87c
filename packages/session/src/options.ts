import { randomBytes } from 'node:crypto'
// Used by a type below, so the import stays in the published options.d.ts and
// carries @fastify/session's declaration merging (`request.session`,
// `interface Session`) to every user of @headroom/session: under pnpm the
// user cannot import @fastify/session, a dependency of ours, themselves.
import type { FastifySessionObject } from '@fastify/session'
import { DEFAULT_COMMAND_TIMEOUT_MS, rejectUnknownOptions, type OptionNames, type RedisClient } from '@headroom/core'
import { InvalidOption, WeakSecret } from './errors.js'
import { secretWeakness } from './secrets.js'

/** @default 'headroom:session:' */
export const DEFAULT_KEY_PREFIX = 'headroom:session:'
/** @default 'sessionId' (the name @fastify/session uses) */
export const DEFAULT_COOKIE_NAME = 'sessionId'
/** @default 86_400_000 (24 h): the cookie's max age and the Redis TTL */
export const DEFAULT_MAX_AGE_MS = 24 * 60 * 60 * 1000
/**
 * The TTL is extended (PEXPIRE, no rewrite) once this share of `maxAge` has
 * passed since the last save or touch.
 * @default 0.25
 */
export const DEFAULT_TOUCH_AFTER_RATIO = 0.25
/** @default 8192: bytes of serialized session data */
export const DEFAULT_MAX_SIZE = 8192
/** @default 10_000: sessions the in-memory fallback holds per instance */
export const DEFAULT_FALLBACK_MAX = 10_000
/** @default 500: how often a Redis that went away is probed while the fallback is active */
export const DEFAULT_PROBE_INTERVAL_MS = 500
/** the longest gap between two probes of a Redis that stays down (the back-off doubles from `probeIntervalMs`) */
export const MAX_PROBE_BACKOFF_MS = 5000
/** @default 2000: how long registration waits for a Redis client that is not ready yet before starting on the fallback */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2000
/** @default 10_000: sessions the hot-session cache holds per instance (LRU) */
export const DEFAULT_HOT_MAX = 10_000
/**
 * @default 5000: the longest a hot session is served without a Redis read.
 * A safety net only: changes reach every instance over the invalidation bus.
 */
export const DEFAULT_HOT_MAX_AGE_MS = 5000
export { MIN_SECRET_LENGTH } from './secrets.js'

export type SameSite = 'lax' | 'strict' | 'none'

/**
 * `request.session`: @fastify/session's session object (`regenerate()`,
 * `destroy()`, `get()`/`set()`) with the fields of `SessionData`, which you
 * extend with `declare module '@headroom/session' { interface SessionData { ... } }`.
 */
export type RequestSession = FastifySessionObject

export interface SessionCookieOptions {
  /** @default undefined (host-only cookie) */
  domain?: string
  /** @default '/' */
  path?: string
  /** @default 'lax' */
  sameSite?: SameSite
  /**
   * `true` sends the cookie over HTTPS only; `'auto'` follows `request.protocol`
   * (set Fastify's `trustProxy` behind a TLS-terminating proxy).
   * @default true in production, 'auto' otherwise
   */
  secure?: boolean | 'auto'
  /** @default true; false is refused in production */
  httpOnly?: boolean
  /** @default false */
  partitioned?: boolean
}

export interface SessionOptions {
  /**
   * Secrets that sign the session cookie, newest first: the first signs, all
   * verify (rotation: prepend a new one, drop the oldest later). Required in
   * production (≥ 32 characters, not a placeholder); outside production a
   * random per-process secret is used when absent.
   */
  secret?: string | string[]
  /** an ioredis client or Cluster; defaults to `fastify.redis` (@fastify/redis); never closed by this plugin */
  redis?: RedisClient
  /** prefix of every Redis key. @default 'headroom:session:' (DEFAULT_KEY_PREFIX) */
  keyPrefix?: string
  /** @default 'sessionId' (DEFAULT_COOKIE_NAME, the name @fastify/session uses) */
  cookieName?: string
  /** session lifetime in ms: the cookie's Max-Age and the Redis TTL. @default 86_400_000 (24 h, DEFAULT_MAX_AGE_MS) */
  maxAge?: number
  /** attributes of the session cookie. @default { path: '/', sameSite: 'lax', secure: production ? true : 'auto', httpOnly: true, partitioned: false } */
  cookie?: SessionCookieOptions
  /** ms after the last save or touch before a read extends the TTL. @default maxAge × DEFAULT_TOUCH_AFTER_RATIO */
  touchAfter?: number
  /** bytes of serialized session data; a larger session fails with HEADROOM_SESSION_TOO_LARGE. @default 8192 (DEFAULT_MAX_SIZE) */
  maxSize?: number
  /** bound of every Redis command. @default 250 (DEFAULT_COMMAND_TIMEOUT_MS from @headroom/core) */
  commandTimeoutMs?: number
  /** the in-memory store used while Redis is down or absent */
  fallback?: {
    /** sessions held per instance. @default 10_000 (DEFAULT_FALLBACK_MAX) */
    max?: number
  }
  /**
   * Hot sessions served from this instance's memory, invalidated on every
   * instance over Redis pub/sub before the response that changed them is
   * sent (README: "Hot sessions"). `false` reads every session from Redis.
   * @default {} (on, with the defaults below)
   */
  hot?: false | {
    /** sessions held per instance (LRU). @default 10_000 (DEFAULT_HOT_MAX) */
    max?: number
    /** the longest a hot session is served without a Redis read. @default 5000 (DEFAULT_HOT_MAX_AGE_MS) */
    maxAgeMs?: number
  }
  /** how often a Redis that went away is probed while the fallback is active. @default 500 (DEFAULT_PROBE_INTERVAL_MS) */
  probeIntervalMs?: number
  /** how long registration waits for a Redis client that is not ready yet before starting on the fallback. @default 2000 (DEFAULT_CONNECT_TIMEOUT_MS) */
  connectTimeoutMs?: number
  /** production rules: a strong `secret` is required, insecure cookies are refused. @default process.env.NODE_ENV === 'production' */
  production?: boolean
}

export interface NormalizedOptions {
  secrets: string[]
  generatedSecret: boolean
  redis: RedisClient | undefined
  keyPrefix: string
  cookieName: string
  maxAge: number
  cookie: Required<Omit<SessionCookieOptions, 'domain'>> & { domain: string | undefined }
  touchAfter: number
  maxSize: number
  commandTimeoutMs: number
  fallbackMax: number
  /** null: off */
  hot: { max: number, maxAgeMs: number } | null
  probeIntervalMs: number
  connectTimeoutMs: number
  production: boolean
}

function positiveInt (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new InvalidOption(name, `expected a positive integer, got ${JSON.stringify(value)}`)
  }
  return value
}

function normalizeSecrets (secret: unknown, production: boolean): { secrets: string[], generated: boolean } {
  if (secret === undefined) {
    if (production) throw new WeakSecret('no secret is configured')
    return { secrets: [randomBytes(32).toString('base64url')], generated: true }
  }
  const secrets = Array.isArray(secret) ? secret : [secret]
  if (secrets.length === 0) throw new InvalidOption('secret', 'expected at least one secret')
  for (const s of secrets) {
    if (typeof s !== 'string' || s.length === 0) throw new InvalidOption('secret', 'expected non-empty strings')
    if (production) {
      const why = secretWeakness(s)
      if (why) throw new WeakSecret(why)
    }
  }
  return { secrets: [...secrets], generated: false }
}

const KNOWN: OptionNames<SessionOptions> = {
  secret: true,
  redis: true,
  keyPrefix: true,
  cookieName: true,
  maxAge: true,
  cookie: true,
  touchAfter: true,
  maxSize: true,
  commandTimeoutMs: true,
  fallback: true,
  hot: true,
  probeIntervalMs: true,
  connectTimeoutMs: true,
  production: true
}
const KNOWN_COOKIE: OptionNames<SessionCookieOptions> = { domain: true, path: true, sameSite: true, secure: true, httpOnly: true, partitioned: true }
const KNOWN_FALLBACK: OptionNames<NonNullable<SessionOptions['fallback']>> = { max: true }
const KNOWN_HOT: OptionNames<Exclude<SessionOptions['hot'], false | undefined>> = { max: true, maxAgeMs: true }

/** @fastify/session's names for our options, so a migration gets a useful message */
const RENAMED = {
  secrets: 'the signing secrets are `secret` (a string or an array, newest first)',
  store: 'the store is Redis (`redis` or fastify.redis) with an in-memory fallback',
  cookiePrefix: 'the cookie is named by `cookieName`',
  rolling: 'sessions are extended on read after `touchAfter`',
  saveUninitialized: 'an empty session is never saved'
}

const invalid = (name: string, reason: string): Error => new InvalidOption(name, reason)

export function normalizeOptions (opts: SessionOptions = {}): NormalizedOptions {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOption('options', 'expected an object')
  rejectUnknownOptions(opts, KNOWN, invalid, RENAMED)
  rejectUnknownOptions(opts.cookie, KNOWN_COOKIE, invalid, {}, 'cookie')
  rejectUnknownOptions(opts.fallback, KNOWN_FALLBACK, invalid, {}, 'fallback')
  rejectUnknownOptions(opts.hot, KNOWN_HOT, invalid, {}, 'hot')
  const production = opts.production ?? process.env.NODE_ENV === 'production'
  if (typeof production !== 'boolean') throw new InvalidOption('production', 'expected a boolean')
  const { secrets, generated } = normalizeSecrets(opts.secret, production)

  const keyPrefix = opts.keyPrefix ?? DEFAULT_KEY_PREFIX
  if (typeof keyPrefix !== 'string') throw new InvalidOption('keyPrefix', 'expected a string')
  const cookieName = opts.cookieName ?? DEFAULT_COOKIE_NAME
  if (typeof cookieName !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName)) {
    throw new InvalidOption('cookieName', 'expected a cookie name token (letters, digits, !#$%&\'*+-.^_`|~)')
  }
  const maxAge = positiveInt('maxAge', opts.maxAge, DEFAULT_MAX_AGE_MS)
  const touchAfter = opts.touchAfter === undefined
    ? Math.floor(maxAge * DEFAULT_TOUCH_AFTER_RATIO)
    : positiveInt('touchAfter', opts.touchAfter, 0)
  if (touchAfter >= maxAge) throw new InvalidOption('touchAfter', `must be below maxAge (${maxAge} ms), or sessions expire before they are extended`)

  const c = opts.cookie ?? {}
  if (typeof c !== 'object' || c === null) throw new InvalidOption('cookie', 'expected an object')
  const sameSite = c.sameSite ?? 'lax'
  if (!['lax', 'strict', 'none'].includes(sameSite)) throw new InvalidOption('cookie.sameSite', "expected 'lax', 'strict' or 'none'")
  const secure = c.secure ?? (production ? true : 'auto')
  if (secure !== true && secure !== false && secure !== 'auto') throw new InvalidOption('cookie.secure', "expected true, false or 'auto'")
  if (sameSite === 'none' && secure === false) throw new InvalidOption('cookie.sameSite', "'none' needs cookie.secure (browsers drop insecure SameSite=None cookies)")
  const httpOnly = c.httpOnly ?? true
  if (typeof httpOnly !== 'boolean') throw new InvalidOption('cookie.httpOnly', 'expected a boolean')
  if (production && !httpOnly) throw new InvalidOption('cookie.httpOnly', 'false is refused in production: scripts could read the session id')
  if (production && secure === false) throw new InvalidOption('cookie.secure', 'false is refused in production: the session id would travel in clear text')
  const path = c.path ?? '/'
  if (typeof path !== 'string' || !path.startsWith('/')) throw new InvalidOption('cookie.path', "expected a path starting with '/'")
  if (c.domain !== undefined && typeof c.domain !== 'string') throw new InvalidOption('cookie.domain', 'expected a string')

  // `redis` is validated by core's useRedis, with every plugin's: one check, one message
  const redis = opts.redis

  const hot = opts.hot ?? {}
  if (hot !== false && (typeof hot !== 'object' || hot === null)) throw new InvalidOption('hot', 'expected false or an object')

  return {
    secrets,
    generatedSecret: generated,
    redis,
    keyPrefix,
    cookieName,
    maxAge,
    cookie: { domain: c.domain, path, sameSite, secure, httpOnly, partitioned: c.partitioned ?? false },
    touchAfter,
    maxSize: positiveInt('maxSize', opts.maxSize, DEFAULT_MAX_SIZE),
    commandTimeoutMs: positiveInt('commandTimeoutMs', opts.commandTimeoutMs, DEFAULT_COMMAND_TIMEOUT_MS),
    fallbackMax: positiveInt('fallback.max', opts.fallback?.max, DEFAULT_FALLBACK_MAX),
    hot: hot === false
      ? null
      : { max: positiveInt('hot.max', hot.max, DEFAULT_HOT_MAX), maxAgeMs: positiveInt('hot.maxAgeMs', hot.maxAgeMs, DEFAULT_HOT_MAX_AGE_MS) },
    probeIntervalMs: positiveInt('probeIntervalMs', opts.probeIntervalMs, DEFAULT_PROBE_INTERVAL_MS),
    connectTimeoutMs: positiveInt('connectTimeoutMs', opts.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    production
  }
}
