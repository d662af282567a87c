// One unit on purpose (about 400 lines): the options type with a JSDoc per
// option and its default, the list of known names the compiler checks against
// that type, and the one validation that turns them into settings. Split, the
// type and its validation would drift apart.
import type { FastifyRequest } from 'fastify'
import { rejectUnknownOptions, type OptionNames, type RedisClient } from '@headroom/core'
import { InvalidOption } from './errors.js'

export type RateLimitHookName = 'onRequest' | 'preValidation' | 'preHandler'
export type StoreDownPolicy = 'local' | 'open' | 'closed'

/** One quota: `limit` requests per rolling `window`, per key. */
export interface PolicyOptions {
  /** requests admitted in any rolling window */
  limit: number
  /** milliseconds, or a string such as `'15m'`, `'1 minute'`, `'30s'` */
  window: number | string
  /**
   * The bucket key. `client` is the default identity (`u:<user>` or
   * `ip:<address or /64>`); return e.g. `${client}:${request.body.username}`
   * for a login policy. `undefined` falls back to `client`.
   */
  key?: (request: FastifyRequest, client: string) => string | undefined
  /** when the policy is checked; `preHandler` sees the parsed body and the authenticated user */
  hook?: RateLimitHookName
}

/**
 * A route's `config.rateLimit`, in @fastify/rate-limit's words: `false` never
 * counts the route; absent, the default policy applies.
 */
export interface RouteRateLimitOptions {
  /** a policy of the `policies` option, or a group: every route naming it shares one quota @default the route's own policy */
  groupId?: string
  /** requests per window for this route, or for its group (set by the first route naming it) @default the default `limit` */
  max?: number
  /** milliseconds, or a string such as `'15m'` @default the default `window` */
  timeWindow?: number | string
  /** the bucket key of this route, replacing the policy's @default the client identity */
  keyGenerator?: (request: FastifyRequest) => string | number | Promise<string | number>
  /** when this route is checked @default the policy's hook */
  hook?: RateLimitHookName
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @headroom/ratelimit: this route's policy or group; `false`: never counted */
    rateLimit?: RouteRateLimitOptions | false
  }
}

/** Every key of a route's `config.rateLimit`, for the unknown-key check. */
export const ROUTE_OPTIONS: OptionNames<RouteRateLimitOptions> = { groupId: true, max: true, timeWindow: true, keyGenerator: true, hook: true }

export interface StaticAssetOptions {
  /** path prefixes whose GET/HEAD requests are never counted @default DEFAULT_STATIC_PREFIXES */
  prefixes?: string[]
  /** file extensions (no dot) whose GET/HEAD requests are never counted @default DEFAULT_STATIC_EXTENSIONS */
  extensions?: string[]
}

export interface HeadroomRateLimitOptions {
  /** requests per window per client for every route without its own policy @default DEFAULT_LIMIT */
  limit?: number
  /** @default DEFAULT_WINDOW_MS (15 minutes) */
  window?: number | string
  /**
   * Sub-windows the rolling window is counted in. A request is refused when
   * the sub-windows overlapping the last `window` already hold `limit`
   * requests, so no rolling window ever admits more than `limit`; a quota
   * frees up at most `window / buckets` later than an exact log would.
   * @default DEFAULT_BUCKETS
   */
  buckets?: number
  /** named policies, used by routes through `config.rateLimit.groupId` and shared by all of them */
  policies?: Record<string, PolicyOptions>
  /**
   * The authenticated user, if any: its return value keys the bucket instead
   * of the client address. Runs in the policy's hook, so set `hook:
   * 'preHandler'` (the default when `identify` is given) to run after your
   * authentication hooks.
   */
  identify?: (request: FastifyRequest) => string | undefined
  /** @default 'preHandler' when `identify` is set, else 'onRequest' */
  hook?: RateLimitHookName
  /** IPv6 clients are grouped by this prefix length @default DEFAULT_IPV6_SUBNET */
  ipv6Subnet?: number
  /** an ioredis client or Cluster; default `fastify.redis`; none: local limits only (single instance) */
  redis?: RedisClient
  /** prefix of every Redis key @default DEFAULT_PREFIX */
  prefix?: string
  /** what happens while Redis cannot be reached @default 'local' */
  onStoreDown?: StoreDownPolicy
  /** per Redis call, before the fallback takes over @default 250 (core's DEFAULT_COMMAND_TIMEOUT_MS) */
  commandTimeoutMs?: number
  /** consecutive Redis failures that open the circuit @default 3 */
  failureThreshold?: number
  /** open-circuit time before a probe @default 1000 */
  resetTimeoutMs?: number
  /**
   * In the local fallback each instance admits `ceil(limit / localDivisor)`;
   * set it to the number of instances to keep the fleet near `limit`.
   * @default 1
   */
  localDivisor?: number
  /** keys the in-process limiter remembers (least recently used evicted) @default DEFAULT_LOCAL_MAX_KEYS */
  localMaxKeys?: number
  /**
   * Remember clients Redis refused until their retry time, so a flood from
   * them is answered in-process without reaching Redis; bounded LRU.
   * `false` disables it. @default { maxKeys: DEFAULT_BLOCK_MAX_KEYS }
   */
  localBlock?: false | { maxKeys?: number }
  /** `false`: count static assets too @default { prefixes, extensions } */
  staticAssets?: false | StaticAssetOptions
  /** exact paths never counted (health probes) @default DEFAULT_SKIP_PATHS */
  skipPaths?: string[]
  /** methods never counted (CORS preflights) @default DEFAULT_SKIP_METHODS */
  skipMethods?: string[]
  /** your own rule: true = not counted */
  skip?: (request: FastifyRequest) => boolean
  /** send draft-10 `RateLimit-Policy` and `RateLimit` @default true */
  headers?: boolean
  /** also send `X-RateLimit-Limit/-Remaining/-Reset` @default false */
  legacyHeaders?: boolean
}

/** @default 500 (the seed's number) */
export const DEFAULT_LIMIT = 500
/** @default 900000 (15 minutes) */
export const DEFAULT_WINDOW_MS = 15 * 60_000
/** @default 60 (15 s sub-windows for the 15-minute default) */
export const DEFAULT_BUCKETS = 60
/** @default 64 */
export const DEFAULT_IPV6_SUBNET = 64
/** @default 'headroom:rl:' */
export const DEFAULT_PREFIX = 'headroom:rl:'
/** @default 20000 */
export const DEFAULT_LOCAL_MAX_KEYS = 20_000
/** @default 10000 */
export const DEFAULT_BLOCK_MAX_KEYS = 10_000
/** @default ['/static/', '/assets/', '/public/'] */
export const DEFAULT_STATIC_PREFIXES = ['/static/', '/assets/', '/public/']
/** @default scripts, styles, source maps, images, fonts, favicon */
export const DEFAULT_STATIC_EXTENSIONS = [
  'js', 'mjs', 'css', 'map',
  'png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'avif', 'ico',
  'woff', 'woff2', 'ttf', 'otf', 'eot'
]
/** @default ['/health', '/health/ready', '/metrics'] */
export const DEFAULT_SKIP_PATHS = ['/health', '/health/ready', '/metrics']
/** @default ['OPTIONS']: a CORS preflight is sent by the browser, not the client's code, and must not halve its quota */
export const DEFAULT_SKIP_METHODS = ['OPTIONS']

export const HOOKS: readonly RateLimitHookName[] = ['onRequest', 'preValidation', 'preHandler']

export interface Policy {
  name: string
  limit: number
  windowMs: number
  /** sub-window length, ms: ceil(windowMs / buckets) */
  granularityMs: number
  buckets: number
  key: ((request: FastifyRequest, client: string) => string | undefined) | undefined
  hook: RateLimitHookName
  /** the constant `RateLimit-Policy` item */
  header: string
  /** the policy name as an sf-string, for `RateLimit` */
  item: string
}

export interface NormalizedOptions {
  defaultPolicy: Policy
  policies: Map<string, Policy>
  buckets: number
  identify: ((request: FastifyRequest) => string | undefined) | undefined
  hook: RateLimitHookName
  ipv6Subnet: number
  redis: RedisClient | undefined
  prefix: string
  onStoreDown: StoreDownPolicy
  commandTimeoutMs: number | undefined
  failureThreshold: number | undefined
  resetTimeoutMs: number | undefined
  localDivisor: number
  localMaxKeys: number
  blockMaxKeys: number
  staticPrefixes: string[]
  staticExtensions: Set<string>
  skipPaths: Set<string>
  skipMethods: Set<string>
  skip: ((request: FastifyRequest) => boolean) | undefined
  headers: boolean
  legacyHeaders: boolean
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000
}

/** `900000`, `'15m'`, `'15 minutes'`, `'1 hour'` → milliseconds; anything else throws naming `name`. */
export function parseWindow (name: string, value: unknown): number {
  let ms: number | undefined
  if (typeof value === 'number') ms = value
  else if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(value)
    const unit = match ? UNITS[(match[2] ?? 'ms').toLowerCase()] : undefined
    if (match && unit !== undefined) ms = Number(match[1]) * unit
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 1) {
    throw new InvalidOption(name, `expected milliseconds >= 1 or a duration such as '15m', got ${JSON.stringify(value)}`)
  }
  return Math.round(ms)
}

function positiveInt (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidOption(name, `expected an integer >= 1, got ${JSON.stringify(value)}`)
  }
  return value
}

function optionalFunction<T> (name: string, value: unknown): T | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function') throw new InvalidOption(name, `expected a function, got ${typeof value}`)
  return value as T
}

function stringList (name: string, value: unknown, fallback: string[]): string[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new InvalidOption(name, 'expected an array of strings')
  }
  return value as string[]
}

function hookName (name: string, value: unknown, fallback: RateLimitHookName): RateLimitHookName {
  if (value === undefined) return fallback
  if (!HOOKS.includes(value as RateLimitHookName)) {
    throw new InvalidOption(name, `expected one of ${HOOKS.join(', ')}, got ${JSON.stringify(value)}`)
  }
  return value as RateLimitHookName
}

/** A policy name goes into a structured-field string and a metric label: printable ASCII, bounded length. */
function policyName (name: string, value: string): string {
  if (!/^[\x20-\x7e]{1,100}$/.test(value)) {
    throw new InvalidOption(name, `policy names are 1-100 printable ASCII characters, got ${JSON.stringify(value)}`)
  }
  return value
}

/** RFC 9651 sf-string: quoted, with `\` and `"` escaped. */
export function sfString (value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

export function makePolicy (
  where: string,
  name: string,
  input: { limit?: unknown, window?: unknown, key?: unknown, hook?: unknown },
  defaults: { limit: number, windowMs: number, buckets: number, hook: RateLimitHookName }
): Policy {
  policyName(`${where}`, name)
  const limit = positiveInt(`${where}.limit`, input.limit, defaults.limit)
  const windowMs = input.window === undefined ? defaults.windowMs : parseWindow(`${where}.window`, input.window)
  const buckets = Math.min(defaults.buckets, windowMs)
  const granularityMs = Math.ceil(windowMs / buckets)
  return {
    name,
    limit,
    windowMs,
    granularityMs,
    buckets,
    key: optionalFunction(`${where}.key`, input.key),
    hook: hookName(`${where}.hook`, input.hook, defaults.hook),
    header: `${sfString(name)};q=${limit};w=${Math.ceil(windowMs / 1000)}`,
    item: sfString(name)
  }
}

const KNOWN: OptionNames<HeadroomRateLimitOptions> = {
  limit: true,
  window: true,
  buckets: true,
  policies: true,
  identify: true,
  hook: true,
  ipv6Subnet: true,
  redis: true,
  prefix: true,
  onStoreDown: true,
  commandTimeoutMs: true,
  failureThreshold: true,
  resetTimeoutMs: true,
  localDivisor: true,
  localMaxKeys: true,
  localBlock: true,
  staticAssets: true,
  skipPaths: true,
  skipMethods: true,
  skip: true,
  headers: true,
  legacyHeaders: true
}

/** @fastify/rate-limit's names for our options, so a migration gets a useful message */
const RENAMED = {
  max: 'the request count is `limit`',
  timeWindow: 'the window is `window`',
  keyGenerator: 'use `identify` for users, or a policy `key`',
  skipOnError: 'see `onStoreDown`',
  allowList: 'use `skip`',
  nameSpace: 'the key prefix is `prefix`'
}

const POLICY_OPTIONS: OptionNames<PolicyOptions> = { limit: true, window: true, key: true, hook: true }
const STATIC_OPTIONS: OptionNames<StaticAssetOptions> = { prefixes: true, extensions: true }
const invalid = (name: string, reason: string): Error => new InvalidOption(name, reason)

export function normalizeOptions (opts: HeadroomRateLimitOptions = {}): NormalizedOptions {
  rejectUnknownOptions(opts, KNOWN, invalid, RENAMED)
  rejectUnknownOptions(opts.staticAssets, STATIC_OPTIONS, invalid, {}, 'staticAssets')
  rejectUnknownOptions(opts.localBlock, { maxKeys: true }, invalid, {}, 'localBlock')
  const identify = optionalFunction<NormalizedOptions['identify']>('identify', opts.identify)
  const hook = hookName('hook', opts.hook, identify ? 'preHandler' : 'onRequest')
  const buckets = positiveInt('buckets', opts.buckets, DEFAULT_BUCKETS)
  const windowMs = opts.window === undefined ? DEFAULT_WINDOW_MS : parseWindow('window', opts.window)
  const limit = positiveInt('limit', opts.limit, DEFAULT_LIMIT)
  const base = { limit, windowMs, buckets, hook }
  const defaultPolicy = makePolicy('limit', 'default', { limit, window: windowMs }, base)

  const policies = new Map<string, Policy>()
  if (opts.policies !== undefined) {
    if (typeof opts.policies !== 'object' || opts.policies === null) throw new InvalidOption('policies', 'expected an object')
    for (const [name, p] of Object.entries(opts.policies)) {
      if (typeof p !== 'object' || p === null) throw new InvalidOption(`policies.${name}`, 'expected an object')
      rejectUnknownOptions(p, POLICY_OPTIONS, invalid, RENAMED, `policies.${name}`)
      if (p.limit === undefined || p.window === undefined) {
        throw new InvalidOption(`policies.${name}`, 'a policy needs both limit and window')
      }
      if (name === 'default') throw new InvalidOption('policies.default', 'the default policy is set with limit/window')
      policies.set(name, makePolicy(`policies.${name}`, name, p, base))
    }
  }

  const ipv6Subnet = opts.ipv6Subnet ?? DEFAULT_IPV6_SUBNET
  if (!Number.isInteger(ipv6Subnet) || ipv6Subnet < 1 || ipv6Subnet > 128) {
    throw new InvalidOption('ipv6Subnet', `expected an integer 1-128, got ${JSON.stringify(opts.ipv6Subnet)}`)
  }
  // `redis` is validated by core's useRedis, with every plugin's: one check, one message
  const redis = opts.redis
  const prefix = opts.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') throw new InvalidOption('prefix', 'expected a string')
  const onStoreDown = opts.onStoreDown ?? 'local'
  if (!['local', 'open', 'closed'].includes(onStoreDown)) {
    throw new InvalidOption('onStoreDown', `expected 'local', 'open' or 'closed', got ${JSON.stringify(onStoreDown)}`)
  }
  const commandTimeoutMs = opts.commandTimeoutMs === undefined ? undefined : positiveInt('commandTimeoutMs', opts.commandTimeoutMs, 1)
  const failureThreshold = opts.failureThreshold === undefined ? undefined : positiveInt('failureThreshold', opts.failureThreshold, 1)
  const resetTimeoutMs = opts.resetTimeoutMs === undefined ? undefined : positiveInt('resetTimeoutMs', opts.resetTimeoutMs, 1)

  const localBlock = opts.localBlock ?? {}
  if (localBlock !== false && (typeof localBlock !== 'object' || localBlock === null)) {
    throw new InvalidOption('localBlock', 'expected false or { maxKeys }')
  }
  const staticAssets = opts.staticAssets ?? {}
  if (staticAssets !== false && (typeof staticAssets !== 'object' || staticAssets === null)) {
    throw new InvalidOption('staticAssets', 'expected false or { prefixes, extensions }')
  }
  const extensions = staticAssets === false ? [] : stringList('staticAssets.extensions', staticAssets.extensions, DEFAULT_STATIC_EXTENSIONS)
  if (typeof opts.headers !== 'undefined' && typeof opts.headers !== 'boolean') throw new InvalidOption('headers', 'expected a boolean')
  if (typeof opts.legacyHeaders !== 'undefined' && typeof opts.legacyHeaders !== 'boolean') throw new InvalidOption('legacyHeaders', 'expected a boolean')

  return {
    defaultPolicy,
    policies,
    buckets,
    identify,
    hook,
    ipv6Subnet,
    redis,
    prefix,
    onStoreDown,
    commandTimeoutMs,
    failureThreshold,
    resetTimeoutMs,
    localDivisor: positiveInt('localDivisor', opts.localDivisor, 1),
    localMaxKeys: positiveInt('localMaxKeys', opts.localMaxKeys, DEFAULT_LOCAL_MAX_KEYS),
    blockMaxKeys: localBlock === false ? 0 : positiveInt('localBlock.maxKeys', localBlock.maxKeys, DEFAULT_BLOCK_MAX_KEYS),
    staticPrefixes: staticAssets === false ? [] : stringList('staticAssets.prefixes', staticAssets.prefixes, DEFAULT_STATIC_PREFIXES),
    staticExtensions: new Set(extensions.map((e) => e.replace(/^\./, '').toLowerCase())),
    skipPaths: new Set(stringList('skipPaths', opts.skipPaths, DEFAULT_SKIP_PATHS)),
    skipMethods: new Set(stringList('skipMethods', opts.skipMethods, DEFAULT_SKIP_METHODS).map((m) => m.toUpperCase())),
    skip: optionalFunction('skip', opts.skip),
    headers: opts.headers ?? true,
    legacyHeaders: opts.legacyHeaders ?? false
  }
}
