import { checkKey, checkTags, encodeUser, globalTag, sharedKey, userPrefix, userTagPrefix } from './entry.js'
import type { Engine, Factory, Target } from './engine.js'
import type { NamespaceMetrics } from './metrics.js'
import { resolvePolicy, type CachePolicy, type ResolvedNamespace, type ResolvedPolicy } from './options.js'

export interface WrapOptions extends CachePolicy {
  /** tags of the entry, for `invalidateTags` (scoped to the user in a per-user namespace) */
  tags?: string[]
}

export type SetOptions = WrapOptions

/** The operations on one keyspace: a shared namespace, or one user's slice of a per-user namespace. */
export interface CacheOperations {
  /** the value under `key`, or the factory's (once per key across concurrent callers), stored in both tiers */
  wrap<T>(key: string, factory: Factory<T>, options?: WrapOptions): Promise<T>
  /** a fresh value, or `undefined`; never calls a factory */
  get<T>(key: string): Promise<T | undefined>
  /** writes `value` and drops older copies from every instance's L1 */
  set<T>(key: string, value: T, options?: SetOptions): Promise<void>
  /** removes the keys from L2 and from every instance's L1 */
  delete(key: string | string[]): Promise<void>
  /** removes every entry carrying one of `tags`, everywhere */
  invalidateTags(tags: string[]): Promise<void>
}

export interface Namespace extends CacheOperations {
  readonly name: string
  readonly perUser: false
}

export interface UserScope extends CacheOperations {
  readonly name: string
  readonly user: string
  /** drops every entry of this user in this namespace */
  clear(): Promise<void>
}

/**
 * A per-user namespace has no key-level operations of its own: the only
 * way to an entry is through `forUser(user)`, so a key without a user
 * cannot be written, and one user's scope cannot spell another's key.
 */
export interface UserNamespace {
  readonly name: string
  readonly perUser: true
  forUser(user: string | number): UserScope
}

function keys (key: string | string[]): string[] {
  return (Array.isArray(key) ? key : [key]).map(checkKey)
}

class Scope implements CacheOperations {
  readonly #engine: Engine
  readonly #ns: ResolvedNamespace
  readonly #metrics: NamespaceMetrics
  readonly #keyPrefix: string
  readonly #tag: (tag: string) => string
  readonly #ownTags: string[]
  readonly #plain: Target['policy']

  constructor (engine: Engine, ns: ResolvedNamespace, metrics: NamespaceMetrics, keyPrefix: string, tag: (tag: string) => string, ownTags: string[]) {
    this.#engine = engine
    this.#ns = ns
    this.#metrics = metrics
    this.#keyPrefix = keyPrefix
    this.#tag = tag
    this.#ownTags = ownTags
    this.#plain = { ttl: ns.ttl, staleWhileRevalidate: ns.staleWhileRevalidate, staleIfError: ns.staleIfError, timeout: ns.timeout, hardTimeout: ns.hardTimeout }
  }

  target (key: string, options?: WrapOptions): Target {
    const tags = options?.tags === undefined ? this.#ownTags : [...this.#ownTags, ...checkTags(options.tags).map(this.#tag)]
    return {
      ns: this.#ns,
      metrics: this.#metrics,
      key: this.#keyPrefix + checkKey(key),
      policy: options === undefined ? this.#plain : resolvePolicy('options', options, this.#plain),
      tags
    }
  }

  /** A target with an already resolved policy (routes resolve theirs once, at registration). */
  routeTarget (key: string, policy: ResolvedPolicy, tags: string[] | undefined): Target {
    return {
      ns: this.#ns,
      metrics: this.#metrics,
      key: this.#keyPrefix + checkKey(key),
      policy,
      tags: tags === undefined ? this.#ownTags : [...this.#ownTags, ...checkTags(tags).map(this.#tag)]
    }
  }

  wrap<T>(key: string, factory: Factory<T>, options?: WrapOptions): Promise<T> {
    if (typeof factory !== 'function') return Promise.reject(new TypeError('wrap(key, factory): factory must be a function'))
    return this.#engine.wrap(this.target(key, options), factory)
  }

  async get<T>(key: string): Promise<T | undefined> {
    const entry = await this.#engine.lookup(this.target(key))
    return entry === undefined ? undefined : this.#engine.decode<T>(entry)
  }

  set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    return this.#engine.set(this.target(key, options), value)
  }

  delete (key: string | string[]): Promise<void> {
    return this.#engine.delete(keys(key).map((k) => this.#keyPrefix + k))
  }

  invalidateTags (tags: string[]): Promise<void> {
    return this.#engine.invalidateTags(checkTags(tags).map(this.#tag))
  }

  clearOwn (): Promise<void> {
    return this.#engine.invalidateTags(this.#ownTags)
  }
}

export class SharedNamespace extends Scope implements Namespace {
  readonly perUser = false as const
  constructor (engine: Engine, readonly ns: ResolvedNamespace, metrics: NamespaceMetrics) {
    super(engine, ns, metrics, sharedKey(ns.name, ''), globalTag, [])
  }

  get name (): string { return this.ns.name }
}

class UserScopeImpl extends Scope implements UserScope {
  constructor (engine: Engine, ns: ResolvedNamespace, metrics: NamespaceMetrics, readonly user: string, encoded: string) {
    const tagPrefix = userTagPrefix(ns.name, encoded)
    // every entry of the user carries the bare user tag, so `clear()` finds them all
    super(engine, ns, metrics, userPrefix(ns.name, encoded), (tag) => tagPrefix + tag, [tagPrefix])
    this.name = ns.name
  }

  readonly name: string

  clear (): Promise<void> {
    return this.clearOwn()
  }
}

export class PerUserNamespace implements UserNamespace {
  readonly perUser = true as const
  readonly #engine: Engine
  readonly #metrics: NamespaceMetrics

  constructor (engine: Engine, readonly ns: ResolvedNamespace, metrics: NamespaceMetrics) {
    this.#engine = engine
    this.#metrics = metrics
  }

  get name (): string { return this.ns.name }

  forUser (user: string | number): UserScope {
    const encoded = encodeUser(user)
    return new UserScopeImpl(this.#engine, this.ns, this.#metrics, String(user), encoded)
  }
}
