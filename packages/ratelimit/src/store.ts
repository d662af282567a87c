import { LRUCache } from 'lru-cache'
import type { RedisClient, RedisGuard } from '@headroom/core'
import type { Policy, StoreDownPolicy } from './options.js'
import { StoreUnavailable } from './errors.js'
import { LocalWindow, SLIDING_WINDOW_LUA, windowArgs, type Take } from './window.js'

/** What @fastify/rate-limit's store contract expects from `incr`. */
export interface StoreResult {
  current: number
  ttl: number
  /** who decided, for the request's span: absent means the in-process window (no Redis) */
  store?: 'redis' | 'fallback' | 'block'
}
type Callback = (err: Error | null, result?: StoreResult) => void

/** Where a decision came from, for the metrics. */
export type Source = 'redis' | 'local' | 'block' | 'open'

export interface EngineEvents {
  /** `count` requests of `policy` decided by `source` instead of Redis (fallback or local block) */
  onDecided?: (policy: Policy, source: Source, count: number) => void
}

interface Pending {
  policy: Policy
  key: string
  callbacks: Callback[]
  inFlight: boolean
}

const COMMAND = 'headroomSlidingWindow'

type ScriptClient = RedisClient & {
  [COMMAND]: (key: string, limit: number, g: number, k: number, n: number, w: number) => Promise<[number, number, number]>
}

/** Registers the script once per client; ioredis falls back from EVALSHA to EVAL on NOSCRIPT (a restarted Redis). */
export function defineScript (client: RedisClient): void {
  if (typeof (client as unknown as Partial<ScriptClient>)[COMMAND] !== 'function') {
    client.defineCommand(COMMAND, { numberOfKeys: 1, lua: SLIDING_WINDOW_LUA })
  }
}

/**
 * Decides requests for every policy: Redis when there is one (requests for
 * one key in the same event-loop turn share one script call), the local
 * window otherwise or while Redis is down (`onStoreDown: 'local'`), and a
 * bounded local block for keys Redis has refused until their retry time.
 */
export class Engine {
  readonly local: LocalWindow
  readonly guard: RedisGuard | null
  readonly #prefix: string
  readonly #onStoreDown: StoreDownPolicy
  readonly #localDivisor: number
  readonly #blocked: LRUCache<string, true> | null
  readonly #events: EngineEvents
  readonly #pending = new Map<string, Pending>()
  readonly #localResult: StoreResult = { current: 0, ttl: 0 }
  #scheduled = false

  constructor (options: {
    guard: RedisGuard | null
    prefix: string
    onStoreDown: StoreDownPolicy
    localDivisor: number
    localMaxKeys: number
    blockMaxKeys: number
    events?: EngineEvents
  }) {
    this.guard = options.guard
    this.#prefix = options.prefix
    this.#onStoreDown = options.onStoreDown
    this.#localDivisor = options.localDivisor
    this.local = new LocalWindow(options.localMaxKeys)
    this.#blocked = options.blockMaxKeys > 0 ? new LRUCache({ max: options.blockMaxKeys, ttlAutopurge: false }) : null
    this.#events = options.events ?? {}
    if (this.guard) defineScript(this.guard.client)
  }

  /** The Redis key of `key` under `policy`; one key per call, so any Cluster slot will do. */
  redisKey (policy: Policy, key: string): string {
    return `${this.#prefix}${policy.name}:${key}`
  }

  /**
   * Without Redis, decides one request for `key` under `policy` at once and
   * returns @fastify/rate-limit's `{ current, ttl }` in an object reused by
   * the next call (read it before taking again); with Redis, undefined: use
   * `take`. The hot path of a single instance, free of callbacks.
   */
  takeLocal (policy: Policy, key: string): StoreResult | undefined {
    if (this.guard !== null) return undefined
    const take = this.local.take(this.redisKey(policy, key), policy.limit, policy.granularityMs, policy.buckets, 1, policy.windowMs)
    const result = this.#localResult
    result.current = take.admitted > 0 ? take.count : policy.limit + 1
    result.ttl = Math.max(1, take.retryMs)
    return result
  }

  /** Takes one request for `key` under `policy`; `cb` gets @fastify/rate-limit's `{ current, ttl }`. */
  take (policy: Policy, key: string, cb: Callback): void {
    const local = this.takeLocal(policy, key)
    if (local !== undefined) {
      cb(null, { current: local.current, ttl: local.ttl })
      return
    }
    const fullKey = this.redisKey(policy, key)
    if (this.#blocked !== null) {
      const left = this.#blocked.getRemainingTTL(fullKey)
      if (left > 0) {
        this.#events.onDecided?.(policy, 'block', 1)
        cb(null, { current: policy.limit + 1, ttl: Math.ceil(left), store: 'block' })
        return
      }
    }
    const pending = this.#pending.get(fullKey)
    if (pending) {
      pending.callbacks.push(cb)
      return
    }
    this.#pending.set(fullKey, { policy, key: fullKey, callbacks: [cb], inFlight: false })
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#flush)
    }
  }

  /**
   * Takes `n` (0: only reads) from `key` under `policy` outside the request
   * hooks, for counters an application charges itself (failed logins).
   * Same key, script and fallback as a request; not batched. Rejects with
   * StoreUnavailable while Redis is down with `onStoreDown: 'closed'`;
   * with `'open'` it reports an empty count.
   */
  async use (policy: Policy, key: string, n: number): Promise<Take & { source: Source }> {
    const fullKey = this.redisKey(policy, key)
    if (this.guard === null) {
      return { ...this.local.take(fullKey, policy.limit, policy.granularityMs, policy.buckets, n, policy.windowMs), source: 'local' }
    }
    try {
      const [admitted, count, retryMs] = await this.guard.run((c) =>
        (c as ScriptClient)[COMMAND](fullKey, ...windowArgs(policy, n)))
      return { admitted: Number(admitted), count: Number(count), retryMs: Number(retryMs), source: 'redis' }
    } catch (err) {
      if (this.#onStoreDown === 'closed') throw new StoreUnavailable((err as Error).message)
      this.#events.onDecided?.(policy, this.#onStoreDown === 'open' ? 'open' : 'local', 1)
      if (this.#onStoreDown === 'open') return { admitted: n, count: 0, retryMs: 0, source: 'open' }
      const limit = Math.ceil(policy.limit / this.#localDivisor)
      const take = this.local.take(fullKey, limit, policy.granularityMs, policy.buckets, n, policy.windowMs)
      // offset as #answer does, so the caller compares with the policy's limit
      return { ...take, count: take.count + policy.limit - limit, source: 'local' }
    }
  }

  /** Forgets `key` under `policy`: in Redis when it can be reached, and always in this process. */
  async reset (policy: Policy, key: string): Promise<Source> {
    const fullKey = this.redisKey(policy, key)
    this.local.delete(fullKey)
    this.#blocked?.delete(fullKey)
    if (this.guard === null) return 'local'
    try {
      await this.guard.run((c) => c.del(fullKey))
      return 'redis'
    } catch {
      return 'local'
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false
    for (const pending of this.#pending.values()) {
      if (!pending.inFlight) this.#send(pending)
    }
  }

  /**
   * One call per key at a time: requests arriving while it is in flight wait
   * for it and go together in the next call, so a busy client costs one
   * round trip per RTT, not one per request. They never wait for a second
   * timeout: if the call in flight fails, they take the fallback with it.
   */
  #send (pending: Pending): void {
    const { policy, key } = pending
    const callbacks = pending.callbacks
    pending.callbacks = []
    pending.inFlight = true
    const guard = this.guard as RedisGuard
    guard.run((c) => (c as ScriptClient)[COMMAND](key, ...windowArgs(policy, callbacks.length)))
      .then(
        ([admitted, count, retryMs]) => {
          const take = { admitted: Number(admitted), count: Number(count), retryMs: Math.max(1, Number(retryMs)) }
          if (take.admitted < callbacks.length && this.#blocked !== null) {
            this.#blocked.set(key, true, { ttl: take.retryMs })
          }
          this.#answer(callbacks, policy, take, 'redis')
          if (pending.callbacks.length > 0) this.#send(pending)
          else this.#pending.delete(key)
        },
        (err: Error) => {
          this.#pending.delete(key)
          this.#fallback(callbacks.concat(pending.callbacks), policy, key, err)
        }
      )
  }

  #fallback (callbacks: Callback[], policy: Policy, key: string, err: Error): void {
    if (this.#onStoreDown === 'local') {
      this.#events.onDecided?.(policy, 'local', callbacks.length)
      const limit = Math.ceil(policy.limit / this.#localDivisor)
      this.#answer(callbacks, policy, this.local.take(key, limit, policy.granularityMs, policy.buckets, callbacks.length, policy.windowMs), 'fallback', limit)
      return
    }
    const unavailable = new StoreUnavailable(err.message)
    for (const cb of callbacks) cb(unavailable)
  }

  /** Spreads one batch result over its requests, in arrival order: the first `admitted` pass. */
  #answer (callbacks: Callback[], policy: Policy, take: Take, store: 'redis' | 'fallback', limit = policy.limit): void {
    const before = take.count - take.admitted
    const ttl = Math.max(1, take.retryMs)
    // The policy's limit is what @fastify/rate-limit compares with; in the
    // divided local fallback, scale so "remaining" stays honest.
    const offset = policy.limit - limit
    for (let i = 0; i < callbacks.length; i++) {
      const current = i < take.admitted ? before + i + 1 + offset : policy.limit + 1
      ;(callbacks[i] as Callback)(null, { current, ttl, store })
    }
  }
}

/** What @fastify/rate-limit's `store` option takes: `new Store(params)`, `incr`, `child`. */
export interface FastifyRateLimitStoreClass {
  new (params: object): {
    incr (key: string, cb: Callback, timeWindow?: number, max?: number): void
    child (params: object): InstanceType<FastifyRateLimitStoreClass>
  }
}

/**
 * This engine as a @fastify/rate-limit store: pass it as `store` to
 * @fastify/rate-limit and its routes are counted by the same sliding window
 * in Redis, under a policy built from the route's `max` and `timeWindow`.
 */
export function storeClass (engine: Engine, makePolicyFor: (params: { max?: unknown, timeWindow?: unknown, groupId?: unknown, routeInfo?: { method?: unknown, url?: unknown } }) => Policy): FastifyRateLimitStoreClass {
  return class HeadroomStore {
    readonly policy: Policy
    constructor (params: object) {
      this.policy = makePolicyFor(params)
    }

    incr (key: string, cb: Callback): void {
      engine.take(this.policy, key, cb)
    }

    child (params: object): HeadroomStore {
      return new HeadroomStore(params)
    }
  }
}
