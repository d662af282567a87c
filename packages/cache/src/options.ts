import type { FastifyRequest } from 'fastify'
import { rejectUnknownOptions, type OptionNames, type RedisClient } from '@headroom/core'
import { InvalidOption } from './errors.js'

/** How long entries of a namespace live and what happens when their factory is slow or fails. */
export interface CachePolicy {
  /** milliseconds an entry is fresh @default 60_000 (DEFAULT_TTL_MS) */
  ttl?: number
  /** milliseconds after `ttl` during which the stale value is served while one background call refreshes it @default 0 */
  staleWhileRevalidate?: number
  /** milliseconds after `ttl` during which the stale value is served when the factory throws or times out @default 0 */
  staleIfError?: number
  /** soft timeout: after this many ms a stale value (if any) is returned and the factory keeps running in the background; 0 = none @default 0 */
  timeout?: number
  /** hard timeout: the factory is abandoned (its `signal` aborted) after this many ms @default 10_000 (DEFAULT_HARD_TIMEOUT_MS) */
  hardTimeout?: number
}

export interface NamespaceOptions extends CachePolicy {
  /** every key carries a user: entries are reached only through `ns(name).forUser(user)` @default false */
  perUser?: boolean
  /** cross-instance coalescing: one factory call across all instances (a Redis lease), for expensive factories @default false */
  lease?: boolean
  /** keep entries of this namespace in L1 (in-process) too @default true */
  l1?: boolean
}

export interface L1Options {
  /** bound on the bytes of the serialized values held in L1 @default 64 MiB (DEFAULT_L1_MAX_BYTES) */
  maxBytes?: number
  /** bound on the number of entries in L1 @default 50_000 (DEFAULT_L1_MAX_ENTRIES) */
  maxEntries?: number
  /** values bigger than this (serialized) skip L1 and live in L2 only @default 1 MiB (DEFAULT_L1_MAX_ENTRY_BYTES) */
  maxEntryBytes?: number
  /** cap on an entry's life in L1, since a lost pub/sub message must not leave it there for its whole TTL @default 30_000 (DEFAULT_L1_MAX_TTL_MS) */
  maxTtl?: number
}

export interface CacheOptions {
  /** an ioredis client or Cluster; default `fastify.redis`; none: L1 only (one instance) */
  redis?: RedisClient
  /** prefix of every Redis key and of the pub/sub channel @default 'headroom:cache:' (DEFAULT_PREFIX) */
  prefix?: string
  /** policy of the `default` namespace (what `fastify.cache.wrap` uses) and base of every other namespace @default {} (the CachePolicy defaults) */
  defaults?: NamespaceOptions
  /** named namespaces with their own policies, e.g. `{ quotes: { ttl: 5000, staleIfError: 60000 } }` @default {} (only the built-in `default`, `http` and `http-user`) */
  namespaces?: Record<string, NamespaceOptions>
  /** bounds of the in-process tier @default {} (the L1Options defaults) */
  l1?: L1Options
  /** Redis command timeout on the request path @default 250 (core's DEFAULT_COMMAND_TIMEOUT_MS) */
  commandTimeoutMs?: number
  /** consecutive Redis failures that open the circuit @default 3 */
  failureThreshold?: number
  /** ms before a probe goes to Redis again after the circuit opened @default 1000 */
  resetTimeoutMs?: number
  /** invalidations (keys or tags) kept to replay in L2 when Redis comes back @default 10_000 (DEFAULT_REPLAY_LIMIT) */
  replayLimit?: number
  /**
   * replicas that must hold a `set`, `delete` or `invalidateTags` (Redis WAIT, within the command timeout)
   * before it counts as done; fewer: it is queued for replay, so a failover cannot silently lose it.
   * Set 1 on a Redis (Cluster) with replicas @default 0
   */
  waitForReplicas?: number
  /** the clock entries are dated with; inject one in tests and trace replays @default Date.now */
  now?: () => number
  /**
   * The name of the `fastify` decorator. Set another one to register next to
   * @fastify/caching, which decorates `fastify.cache` too, and declare its
   * type (see the README: "Next to @fastify/caching").
   * @default 'cache' (DEFAULT_DECORATOR)
   */
  decorator?: string
}

/** `config: { cache: ... }` of a route. */
export interface RouteCacheOptions {
  /** namespace the responses live in @default 'http', or 'http-user' when `user` is set */
  namespace?: string
  /** the authenticated user; required for (and only allowed with) a per-user namespace. `null`/`undefined`: the response is not cached */
  user?: (request: FastifyRequest) => string | number | null | undefined
  /** the cache key within the namespace (and user) @default request.url (path and query) */
  key?: (request: FastifyRequest) => string
  /** tags of the stored response (scoped to the user on per-user routes) */
  tags?: (request: FastifyRequest) => string[]
  /** `Cache-Control` of cached responses @default 'private, no-cache' per user, else `public, max-age=<ttl s>` */
  cacheControl?: string
  /** overrides of the namespace policy for this route */
  policy?: CachePolicy
}

/** @default 60_000 */
export const DEFAULT_TTL_MS = 60_000
/** @default 10_000 */
export const DEFAULT_HARD_TIMEOUT_MS = 10_000
/** @default 'headroom:cache:' */
export const DEFAULT_PREFIX = 'headroom:cache:'
/** @default 64 MiB */
export const DEFAULT_L1_MAX_BYTES = 64 * 1024 * 1024
/** @default 50_000 */
export const DEFAULT_L1_MAX_ENTRIES = 50_000
/** @default 1 MiB */
export const DEFAULT_L1_MAX_ENTRY_BYTES = 1024 * 1024
/** @default 30_000 */
export const DEFAULT_L1_MAX_TTL_MS = 30_000
/** @default 10_000 */
export const DEFAULT_REPLAY_LIMIT = 10_000
/** @default 'cache': `fastify.cache` */
export const DEFAULT_DECORATOR = 'cache'
/** Namespaces that always exist: `default` for `fastify.cache.wrap`, `http` and `http-user` for routes. */
export const BUILTIN_NAMESPACES = ['default', 'http', 'http-user'] as const

export interface ResolvedPolicy {
  ttl: number
  staleWhileRevalidate: number
  staleIfError: number
  timeout: number
  hardTimeout: number
}

export interface ResolvedNamespace extends ResolvedPolicy {
  name: string
  perUser: boolean
  lease: boolean
  l1: boolean
}

export interface NormalizedOptions {
  redis: RedisClient | undefined
  prefix: string
  namespaces: Map<string, ResolvedNamespace>
  l1: Required<L1Options>
  commandTimeoutMs: number | undefined
  failureThreshold: number | undefined
  resetTimeoutMs: number | undefined
  replayLimit: number
  waitForReplicas: number
  now: () => number
  decorator: string
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/

function ms (name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidOption(name, `must be a finite number >= ${min} (milliseconds or bytes), got ${String(value)}`)
  }
  return value
}

function bool (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new InvalidOption(name, `must be a boolean, got ${typeof value}`)
  return value
}

/** Validates a policy (namespace, route or call level) over `base`; `path` names the option in errors. */
export function resolvePolicy (path: string, policy: CachePolicy | undefined, base: ResolvedPolicy): ResolvedPolicy {
  if (policy === undefined) return base
  if (typeof policy !== 'object' || policy === null) throw new InvalidOption(path, 'must be an object')
  const resolved = {
    ttl: ms(`${path}.ttl`, policy.ttl, base.ttl, 1),
    staleWhileRevalidate: ms(`${path}.staleWhileRevalidate`, policy.staleWhileRevalidate, base.staleWhileRevalidate),
    staleIfError: ms(`${path}.staleIfError`, policy.staleIfError, base.staleIfError),
    timeout: ms(`${path}.timeout`, policy.timeout, base.timeout),
    hardTimeout: ms(`${path}.hardTimeout`, policy.hardTimeout, base.hardTimeout, 1)
  }
  if (resolved.timeout > 0 && resolved.timeout >= resolved.hardTimeout) {
    throw new InvalidOption(`${path}.timeout`, `the soft timeout (${resolved.timeout} ms) must be shorter than hardTimeout (${resolved.hardTimeout} ms)`)
  }
  return resolved
}

function resolveNamespace (name: string, path: string, ns: NamespaceOptions | undefined, base: ResolvedNamespace): ResolvedNamespace {
  return {
    ...resolvePolicy(path, ns, base),
    name,
    perUser: bool(`${path}.perUser`, ns?.perUser, false),
    lease: bool(`${path}.lease`, ns?.lease, base.lease),
    l1: bool(`${path}.l1`, ns?.l1, base.l1)
  }
}

const KNOWN: OptionNames<CacheOptions> = {
  redis: true,
  prefix: true,
  defaults: true,
  namespaces: true,
  l1: true,
  commandTimeoutMs: true,
  failureThreshold: true,
  resetTimeoutMs: true,
  replayLimit: true,
  waitForReplicas: true,
  now: true,
  decorator: true
}
const KNOWN_NAMESPACE: OptionNames<NamespaceOptions> = {
  ttl: true, staleWhileRevalidate: true, staleIfError: true, timeout: true, hardTimeout: true, perUser: true, lease: true, l1: true
}
const KNOWN_L1: OptionNames<L1Options> = { maxBytes: true, maxEntries: true, maxEntryBytes: true, maxTtl: true }
/** async-cache-dedupe's and @fastify/caching's names for our options, so a migration gets a useful message */
const RENAMED = {
  storage: 'Redis is `redis` (or fastify.redis), the in-process tier is `l1`',
  ttl: 'a TTL belongs to a policy: `defaults: { ttl }` or `namespaces: { name: { ttl } }`',
  stale: 'use `staleWhileRevalidate` in `defaults` or a namespace',
  expiresIn: 'a TTL belongs to a policy: `defaults: { ttl }` (milliseconds)'
}
const invalid = (name: string, reason: string): Error => new InvalidOption(name, reason)
/** a decorator name: an identifier, so `fastify[name]` reads like the default */
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

export function normalizeOptions (opts: CacheOptions = {}): NormalizedOptions {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOption('options', 'must be an object')
  rejectUnknownOptions(opts, KNOWN, invalid, RENAMED)
  rejectUnknownOptions(opts.defaults, KNOWN_NAMESPACE, invalid, {}, 'defaults')
  rejectUnknownOptions(opts.l1, KNOWN_L1, invalid, {}, 'l1')
  const decorator = opts.decorator ?? DEFAULT_DECORATOR
  if (typeof decorator !== 'string' || !IDENTIFIER.test(decorator)) throw new InvalidOption('decorator', `must be an identifier such as 'headroomCache', got ${JSON.stringify(decorator)}`)
  const prefix = opts.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') throw new InvalidOption('prefix', 'must be a string')
  // a brace would become the hash tag of every key: the whole cache in one Redis Cluster slot
  if (/[{}]/.test(prefix)) throw new InvalidOption('prefix', 'must not contain { or }: on a Redis Cluster every key would share one hash slot')
  // `redis` is validated by core's useRedis, with every plugin's: one check, one message
  if (opts.now !== undefined && typeof opts.now !== 'function') throw new InvalidOption('now', 'must be a function returning epoch milliseconds')

  const root: ResolvedNamespace = {
    name: 'default',
    ttl: DEFAULT_TTL_MS,
    staleWhileRevalidate: 0,
    staleIfError: 0,
    timeout: 0,
    hardTimeout: DEFAULT_HARD_TIMEOUT_MS,
    perUser: false,
    lease: false,
    l1: true
  }
  if (opts.defaults?.perUser) throw new InvalidOption('defaults.perUser', 'the default namespace is shared; declare a per-user namespace under `namespaces`')
  const defaults = resolveNamespace('default', 'defaults', opts.defaults, root)
  const namespaces = new Map<string, ResolvedNamespace>()
  namespaces.set('default', defaults)
  namespaces.set('http', { ...defaults, name: 'http' })
  namespaces.set('http-user', { ...defaults, name: 'http-user', perUser: true })
  if (opts.namespaces !== undefined && (typeof opts.namespaces !== 'object' || opts.namespaces === null)) {
    throw new InvalidOption('namespaces', 'must be an object of name -> policy')
  }
  for (const [name, ns] of Object.entries(opts.namespaces ?? {})) {
    if (!NAME.test(name)) throw new InvalidOption(`namespaces.${name}`, 'a namespace name is 1-64 characters of A-Z a-z 0-9 _ . -')
    if (name === 'default') throw new InvalidOption('namespaces.default', 'configure the default namespace with `defaults`')
    rejectUnknownOptions(ns, KNOWN_NAMESPACE, invalid, {}, `namespaces.${name}`)
    const builtin = namespaces.get(name)
    const resolved = resolveNamespace(name, `namespaces.${name}`, ns, defaults)
    if (builtin && ns.perUser !== undefined && ns.perUser !== builtin.perUser) {
      throw new InvalidOption(`namespaces.${name}.perUser`, `the built-in namespace "${name}" is ${builtin.perUser ? '' : 'not '}per-user`)
    }
    namespaces.set(name, builtin ? { ...resolved, perUser: builtin.perUser } : resolved)
  }

  const l1 = opts.l1 ?? {}
  const normalizedL1 = {
    maxBytes: ms('l1.maxBytes', l1.maxBytes, DEFAULT_L1_MAX_BYTES, 1),
    maxEntries: ms('l1.maxEntries', l1.maxEntries, DEFAULT_L1_MAX_ENTRIES, 1),
    maxEntryBytes: ms('l1.maxEntryBytes', l1.maxEntryBytes, DEFAULT_L1_MAX_ENTRY_BYTES, 1),
    maxTtl: ms('l1.maxTtl', l1.maxTtl, DEFAULT_L1_MAX_TTL_MS, 1)
  }
  if (!Number.isInteger(normalizedL1.maxEntries)) throw new InvalidOption('l1.maxEntries', 'must be an integer')
  if (normalizedL1.maxEntryBytes > normalizedL1.maxBytes) throw new InvalidOption('l1.maxEntryBytes', 'cannot exceed l1.maxBytes')

  const waitForReplicas = opts.waitForReplicas ?? 0
  if (!Number.isInteger(waitForReplicas) || waitForReplicas < 0) throw new InvalidOption('waitForReplicas', `must be an integer >= 0, got ${String(opts.waitForReplicas)}`)

  return {
    redis: opts.redis,
    prefix,
    namespaces,
    l1: normalizedL1,
    commandTimeoutMs: opts.commandTimeoutMs === undefined ? undefined : ms('commandTimeoutMs', opts.commandTimeoutMs, 0, 1),
    failureThreshold: opts.failureThreshold === undefined ? undefined : ms('failureThreshold', opts.failureThreshold, 0, 1),
    resetTimeoutMs: opts.resetTimeoutMs === undefined ? undefined : ms('resetTimeoutMs', opts.resetTimeoutMs, 0, 1),
    replayLimit: ms('replayLimit', opts.replayLimit, DEFAULT_REPLAY_LIMIT),
    waitForReplicas,
    now: opts.now ?? Date.now,
    decorator
  }
}
