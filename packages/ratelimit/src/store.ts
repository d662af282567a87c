import { LRUCache } from 'lru-cache'
import type { RedisClient, RedisGuard } from '@headroom/core'
import type { Policy, StoreDownPolicy } from './options.js'
import { StoreUnavailable } from './errors.js'
import type { TokenState } from './metrics.js'
import { LocalWindow, SLIDING_WINDOW_LUA, windowArgs, type ReserveArgs, type Take } from './window.js'

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
  /** one script call for requests of `policy` */
  onCall?: (policy: Policy) => void
  /** `count` reserved tokens of `policy` reached `state` */
  onTokens?: (policy: Policy, state: TokenState, count: number) => void
}

/** Token reservation: off, or its size cap and lease. */
export interface ReserveSettings {
  maxTokens: number
  leaseMs: number
}

interface Pending {
  policy: Policy
  key: string
  callbacks: Callback[]
  inFlight: boolean
}

/**
 * What this instance holds for one key: the tokens of its last reservation
 * and the key's recent request rate, which sizes the next one.
 */
interface Held {
  policy: Policy
  /** unspent tokens */
  tokens: number
  /** tokens the reservation got */
  granted: number
  /** performance.now() until which they may be spent: the call's send time + the lease Redis granted */
  deadline: number
  /** the count the last token handed out reported (Redis's count before the reservation, plus the tokens spent) */
  current: number
  /** performance.now() when the count next drops, as Redis said */
  retryAt: number
  /** where the tokens are counted, for giving back the unspent ones */
  sub: number
  epoch: string
  /** requests for the key since the last call, and that call's send time */
  arrivals: number
  since: number
  /**
   * tokens of the reservation the call in flight ended that were spent, and
   * that reservation's deadline: if the call fails (Redis died), they may
   * have been spent after Redis died, so the fallback counts them
   */
  lastSpent: number
  lastDeadline: number
}

/**
 * A reservation's lease under `policy`: the setting, capped at a tenth of the
 * window or one sub-window, whichever is longer. Tokens count as spent at the
 * lease end, so this bounds how much later than an admission's their quota
 * frees.
 */
export function leaseOf (settings: ReserveSettings, policy: Policy): number {
  return Math.min(settings.leaseMs, Math.max(policy.granularityMs, Math.floor(policy.windowMs / 10)))
}

const COMMAND = 'headroomSlidingWindow'
/** what must be left of the limit for a refill ahead of requests: Redis grants a quarter of it, at least 2 */
const REFILL_MARGIN = 8

type ScriptClient = RedisClient & {
  [COMMAND]: (key: string, ...args: Array<number | string>) => Promise<[number, number, number, number?, number?, string?]>
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
  readonly #localResult: StoreResult = { current: 0, ttl: 0, store: undefined }
  readonly #reserve: ReserveSettings | null
  readonly #held: LRUCache<string, Held> | null
  #scheduled = false
  /** a Redis call failed and none has succeeded since: held tokens are not spent */
  #down = false

  constructor (options: {
    guard: RedisGuard | null
    prefix: string
    onStoreDown: StoreDownPolicy
    localDivisor: number
    localMaxKeys: number
    blockMaxKeys: number
    /** null: one token per request, as asked */
    reserve?: ReserveSettings | null
    events?: EngineEvents
  }) {
    this.guard = options.guard
    this.#prefix = options.prefix
    this.#onStoreDown = options.onStoreDown
    this.#localDivisor = options.localDivisor
    this.local = new LocalWindow(options.localMaxKeys)
    this.#blocked = options.blockMaxKeys > 0 ? new LRUCache({ max: options.blockMaxKeys, ttlAutopurge: false }) : null
    this.#events = options.events ?? {}
    this.#reserve = options.reserve ?? null
    this.#held = this.#reserve !== null && this.guard !== null
      ? new LRUCache<string, Held>({ max: options.localMaxKeys, dispose: (held) => { this.#settle(held, 'expired') } })
      : null
    if (this.guard) defineScript(this.guard.client)
  }

  /** The Redis key of `key` under `policy`; one key per call, so any Cluster slot will do. */
  redisKey (policy: Policy, key: string): string {
    return `${this.#prefix}${policy.name}:${key}`
  }

  /**
   * Decides one request for `key` under `policy` at once when no Redis call
   * is needed: without Redis (the in-process window), or with a token this
   * instance holds. Returns @fastify/rate-limit's `{ current, ttl }` in an
   * object reused by the next call (read it before taking again); undefined
   * otherwise: use `take`, which counts the request again (`arrivals`)
   * only when this returned undefined for it. The hot path, free of callbacks.
   */
  takeNow (policy: Policy, key: string): StoreResult | undefined {
    const result = this.#localResult
    if (this.guard === null) {
      const take = this.local.take(this.redisKey(policy, key), policy.limit, policy.granularityMs, policy.buckets, 1, policy.windowMs)
      result.current = take.admitted > 0 ? take.count : policy.limit + 1
      result.ttl = Math.max(1, take.retryMs)
      result.store = undefined
      return result
    }
    if (this.#held === null) return undefined
    const fullKey = this.redisKey(policy, key)
    // a key holding tokens was admitted by Redis since any refusal, so is not blocked
    const held = this.#held.get(fullKey)
    if (held === undefined || held.tokens === 0) return undefined
    if (this.#down || !this.guard.healthy) {
      // Redis failed since these tokens were reserved: spend none of them on top
      // of the fallback's quota. The ones already spent count against it.
      this.#chargeHeld(policy, fullKey, held)
      return undefined
    }
    const now = performance.now()
    if (now >= held.deadline) return undefined
    held.arrivals++
    held.tokens--
    result.current = ++held.current
    result.ttl = Math.max(1, Math.ceil(held.retryAt - now))
    result.store = 'redis'
    if (held.tokens === 0) this.#refill(policy, fullKey, held)
    return result
  }

  /** Takes one request for `key` under `policy`; `cb` gets @fastify/rate-limit's `{ current, ttl }`. */
  take (policy: Policy, key: string, cb: Callback): void {
    const now = this.takeNow(policy, key)
    if (now !== undefined) {
      cb(null, { current: now.current, ttl: now.ttl, store: now.store })
      return
    }
    this.takeRedis(policy, key, cb)
  }

  /** `take` after `takeNow` returned undefined: through Redis (batched per key), the local block, or the fallback. */
  takeRedis (policy: Policy, key: string, cb: Callback): void {
    const fullKey = this.redisKey(policy, key)
    const held = this.#held?.get(fullKey)
    if (held !== undefined) held.arrivals++
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
      this.#down = true
      const held = this.#held?.get(fullKey)
      if (held !== undefined) this.#chargeHeld(policy, fullKey, held)
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
    this.#held?.delete(fullKey)
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
    const sent = performance.now()
    const reserve = this.#reserveArgs(policy, key, callbacks.length, sent)
    const n = callbacks.length + (reserve?.extra ?? 0)
    if (n === 0) {
      // a refill with nothing to ask for (the key turned quiet)
      this.#pending.delete(key)
      return
    }
    this.#events.onCall?.(policy)
    guard.run((c) => (c as ScriptClient)[COMMAND](key, ...windowArgs(policy, n, reserve)))
      .then(
        ([admittedAll, countAll, retryMs, leaseMs, sub, epoch]) => {
          this.#down = false
          if (reserve !== undefined && reserve.returned > 0) this.#events.onTokens?.(policy, 'returned', reserve.returned)
          const admitted = Math.min(Number(admittedAll), callbacks.length)
          const extra = Number(admittedAll) - admitted
          const take = { admitted, count: Number(countAll) - extra, retryMs: Math.max(1, Number(retryMs)) }
          if (take.admitted < callbacks.length && this.#blocked !== null) {
            this.#blocked.set(key, true, { ttl: take.retryMs })
          }
          this.#answer(callbacks, policy, take, 'redis')
          if (extra > 0) this.#events.onTokens?.(policy, 'reserved', extra)
          const held = this.#held?.get(key)
          // the call succeeded: the reservation it ended was spent while Redis answered
          if (held !== undefined) held.lastSpent = 0
          // reset while the call was out: the tokens are dropped, as the reset drops the others
          if (extra > 0 && held === undefined) this.#events.onTokens?.(policy, 'expired', extra)
          if (held !== undefined && extra > 0) {
            held.tokens = held.granted = extra
            // the lease began when Redis ran the script, not before the call left: a stall or a slow network only shortens it here
            held.deadline = sent + Number(leaseMs)
            held.current = take.count
            held.retryAt = performance.now() + take.retryMs
            held.sub = Number(sub)
            held.epoch = String(epoch)
            // requests that arrived while the call was out take the new tokens
            while (held.tokens > 0 && pending.callbacks.length > 0 && performance.now() < held.deadline) {
              held.tokens--
              ;(pending.callbacks.shift() as Callback)(null, { current: ++held.current, ttl: Math.max(1, Math.ceil(held.retryAt - performance.now())), store: 'redis' })
            }
          }
          if (pending.callbacks.length > 0) this.#send(pending)
          else this.#pending.delete(key)
        },
        (err: Error) => {
          if (reserve !== undefined && reserve.returned > 0) this.#events.onTokens?.(policy, 'expired', reserve.returned)
          this.#pending.delete(key)
          this.#down = true
          const held = this.#held?.get(key)
          if (held !== undefined) this.#chargeHeld(policy, key, held)
          this.#fallback(callbacks.concat(pending.callbacks), policy, key, err)
        }
      )
  }

  /**
   * The last token of a reservation was just spent: reserve the next ones
   * now, so the client's next request finds them instead of waiting for
   * Redis (it joins the call if it comes first). Only far from the limit,
   * where Redis would grant at least two (a quarter of what is left): near
   * it, requests go one call each.
   */
  #refill (policy: Policy, key: string, held: Held): void {
    if (policy.limit - held.current < REFILL_MARGIN || this.#pending.has(key)) return
    const pending: Pending = { policy, key, callbacks: [], inFlight: false }
    this.#pending.set(key, pending)
    this.#send(pending)
  }

  /**
   * Sizes the reservation of a call for `waiting` requests of `key`: the
   * tokens this instance would spend within the lease at the key's rate since
   * its last call, capped (Redis grants at most a quarter of what is left).
   * A key seen for the first time, or rarely, gets none: one token per
   * request. Ends the previous reservation: its unspent tokens (expired, or
   * the call would not be needed) go back with this call.
   */
  #reserveArgs (policy: Policy, key: string, waiting: number, sent: number): (ReserveArgs & { extra: number }) | undefined {
    if (this.#held === null) return undefined
    const settings = this.#reserve as ReserveSettings
    const leaseMs = leaseOf(settings, policy)
    let held = this.#held.get(key)
    if (held === undefined) {
      held = { policy, tokens: 0, granted: 0, deadline: 0, current: 0, retryAt: 0, sub: 0, epoch: '', arrivals: 0, since: sent, lastSpent: 0, lastDeadline: 0 }
      this.#held.set(key, held)
      return { waiting, leaseMs, returned: 0, sub: 0, epoch: '', extra: 0 }
    }
    const rate = held.arrivals / Math.max(1, sent - held.since)
    // never more than the fallback's quota: tokens spent before a failure is seen count against it
    const cap = Math.min(settings.maxTokens, Math.ceil(policy.limit / this.#localDivisor) - waiting)
    const extra = Math.max(0, Math.min(cap, Math.ceil(rate * leaseMs) - waiting))
    const returned = held.tokens
    held.lastSpent = held.granted - held.tokens
    held.lastDeadline = held.deadline
    this.#settle(held, null)
    const args = { waiting, leaseMs, returned, sub: held.sub, epoch: held.epoch, extra }
    held.arrivals = 0
    held.since = sent
    return args
  }

  /**
   * Redis failed: the tokens of `key`'s reservations that may have been spent
   * since it did (the current one's, and the one the failed call ended) count
   * in the local window, so the fallback's quota includes them; the unspent
   * ones are dropped. Counted now, so they count at least as long as they
   * would from their spending time; only with `onStoreDown: 'local'` (the
   * others never admit against a local count). Reservations are capped at the
   * fallback quota, so what was spent before the failure was seen never
   * exceeds it.
   */
  #chargeHeld (policy: Policy, key: string, held: Held): void {
    let spent = held.granted - held.tokens
    if (held.lastSpent > 0 && performance.now() <= held.lastDeadline + policy.windowMs) spent += held.lastSpent
    held.lastSpent = 0
    this.#settle(held, 'expired')
    if (spent > 0 && this.#onStoreDown === 'local') {
      this.local.take(key, Number.POSITIVE_INFINITY, policy.granularityMs, policy.buckets, spent, policy.windowMs)
    }
  }

  /** Ends `held`'s reservation: spent tokens counted, the unspent ones `state` (null: the caller reports them). */
  #settle (held: Held, state: TokenState | null): void {
    if (held.granted === 0) return
    const spent = held.granted - held.tokens
    if (spent > 0) this.#events.onTokens?.(held.policy, 'spent', spent)
    if (state !== null && held.tokens > 0) this.#events.onTokens?.(held.policy, state, held.tokens)
    held.granted = 0
    held.tokens = 0
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
