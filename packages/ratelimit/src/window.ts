import { LRUCache } from 'lru-cache'

/**
 * The outcome of taking `n` requests from one key: how many were admitted,
 * the count in the window afterwards, and the milliseconds until the oldest
 * counted sub-window leaves the window (when the count next drops).
 */
export interface Take {
  admitted: number
  count: number
  retryMs: number
}

/**
 * Bucketed sliding window, in Redis, on the server's clock.
 *
 * The window of W ms is counted in sub-windows of g = ceil(W / k) ms. An
 * admission at time a counts until a + W (inclusive): for every sub-window but
 * the newest, a is taken to be the sub-window's last millisecond; for the
 * newest, the time `l` of its last admission (no later admission exists in
 * it). A request is admitted while the counted admissions are fewer than
 * `limit`, so every closed interval of length W (every rolling window) holds
 * at most `limit` admissions (a fixed window admits 2 × limit - 1 across a
 * boundary, GCRA with a burst of `limit` admits up to 2 × limit - 1 in W as
 * well). Quota frees at most g ms later than an exact log would, whose
 * memory grows with `limit`; here it is at most k + 6 hash fields whatever
 * the limit. The time until the count next drops is never more than W + 1
 * ms, plus the lease of a reservation (below) when one is the newest thing
 * counted.
 *
 * One key per call (Cluster-safe), TIME inside the script (no clock skew
 * between instances), `n` requests per call so concurrent requests for one
 * key share a round trip; `n` = 0 reads the count without taking.
 *
 * Reservations: of the `n` asked, `m` are requests waiting now and the other
 * `n - m` tokens an instance will spend later, until `now + lease` at most.
 * Waiting requests are admitted as before (while fewer than `limit` count);
 * extra tokens only up to a quarter of what is left after them, so a key near
 * its limit goes back to one call per request and no instance takes the whole
 * remainder. A reservation counts from the moment it is taken, and as if it
 * were spent at its lease end `e' = now + lease`: its tokens go into the
 * sub-window of e' and `l` becomes max(l, e'), so every token, spent at the
 * latest at e', counts until at least its spending time + W, like an
 * admission. Unspent tokens come back with a later call (`r` of them, counted
 * in sub-window `rs` of the key's incarnation `re`): subtracted only if that
 * incarnation still holds that sub-window, so a reset or a restart that lost
 * the key never makes a return subtract someone else's admissions.
 *
 * Fields: `s` = sum, `o` = oldest sub-window held, `l` = last admission or
 * lease end (ms), `e` = incarnation (the TIME of the key's creation),
 * `<index>` = count of that sub-window.
 *
 * ARGV: limit, g (ms), k, n, W (ms), then optionally m (default n), lease
 * (ms, default 0), r, rs, re. Returns { admitted (of n), count, retryMs,
 * lease granted (ms, 0 without extra tokens), sub-window of the tokens,
 * incarnation }.
 */
export const SLIDING_WINDOW_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local g = tonumber(ARGV[2])
local k = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local w = tonumber(ARGV[5])
local m = tonumber(ARGV[6]) or n
local lease = tonumber(ARGV[7]) or 0
local r = tonumber(ARGV[8]) or 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = math.floor(now / g)
local first = math.floor((now - w) / g)
local st = redis.call('HMGET', key, 's', 'o', 'l', 'e')
local s = tonumber(st[1]) or 0
local o = tonumber(st[2]) or cur
local l = tonumber(st[3]) or now
local e = st[4]
local dirty = false
if s > 0 and (now > l + w or first - o > 2 * k + 4) then
  redis.call('DEL', key)
  s = 0
  e = false
elseif s > 0 and o < first then
  dirty = true
  local j = o
  while j < first do
    local v = redis.call('HGET', key, j)
    if v then
      s = s - tonumber(v)
      redis.call('HDEL', key, j)
    end
    j = j + 1
  end
  if s > 0 then
    local top = math.floor(l / g)
    while j < top and redis.call('HEXISTS', key, j) == 0 do j = j + 1 end
    o = j
  end
end
if r > 0 and s > 0 and e == ARGV[10] then
  local rs = tonumber(ARGV[9])
  local v = tonumber(redis.call('HGET', key, rs))
  if v and rs >= o then
    if r >= v then
      r = v
      redis.call('HDEL', key, rs)
    else
      redis.call('HINCRBY', key, rs, -r)
    end
    s = s - r
    dirty = true
    local top = math.floor(l / g)
    while o < top and redis.call('HEXISTS', key, o) == 0 do o = o + 1 end
  end
end
if s <= 0 then
  s = 0
  o = cur
end
local admitted = limit - s
if admitted > m then admitted = m end
if admitted < 0 then admitted = 0 end
local extra = 0
if n > m then
  extra = math.floor((limit - s - admitted) / 4)
  if extra > n - m then extra = n - m end
end
local upto = now
if extra > 0 then upto = now + lease end
local sub = math.floor(upto / g)
if admitted + extra > 0 then
  if s == 0 then o = sub end
  redis.call('HINCRBY', key, sub, admitted + extra)
  s = s + admitted + extra
  if upto > l then l = upto end
  dirty = true
end
if dirty then
  if s > 0 then
    if not e then e = t[1] .. '.' .. t[2] end
    redis.call('HSET', key, 's', s, 'o', o, 'l', l, 'e', e)
    redis.call('PEXPIRE', key, l + w + 1 - now)
  else
    redis.call('DEL', key)
  end
end
local retry = w + 1
if s > 0 then
  if o == math.floor(l / g) then retry = l + w + 1 - now else retry = (o + 1) * g + w - now end
end
return { admitted + extra, s, retry, upto - now, sub, e or '' }
`

/** What a window's arguments come from (a resolved policy). */
export interface WindowShape { limit: number, granularityMs: number, buckets: number, windowMs: number }

/** A reservation's part of a call: how many of `n` are waiting, the lease, and unspent tokens given back. */
export interface ReserveArgs {
  /** requests waiting now; the other n - m are tokens to spend later */
  waiting: number
  leaseMs: number
  /** unspent tokens of an ended reservation, counted in sub-window `sub` of incarnation `epoch` */
  returned: number
  sub: number
  epoch: string
}

/**
 * SLIDING_WINDOW_LUA's ARGV after the key, in its order (limit, g, k, n, W,
 * then a reservation's m, lease, r, rs, re): the one place that knows that
 * order (LocalWindow.take's typed parameters keep their own, without an
 * array on the local hot path).
 */
export function windowArgs (w: WindowShape, n: number, reserve?: ReserveArgs): Array<number | string> {
  const args: Array<number | string> = [w.limit, w.granularityMs, w.buckets, n, w.windowMs]
  if (reserve !== undefined) args.push(reserve.waiting, reserve.leaseMs, reserve.returned, reserve.sub, reserve.epoch)
  return args
}

interface LocalState {
  /** count per sub-window, ring-indexed by sub-window index mod (k + 1) */
  counts: Uint32Array
  sum: number
  oldest: number
  /** the last admission, ms */
  last: number
}

/**
 * The same algorithm in process memory, for single-instance use and for the
 * fallback while Redis is down. Bounded: at most `maxKeys` keys, least
 * recently used evicted (an evicted key starts again from zero).
 */
export class LocalWindow {
  readonly #states: LRUCache<string, LocalState>
  readonly #now: () => number

  constructor (maxKeys: number, now: () => number = Date.now) {
    this.#states = new LRUCache({ max: maxKeys })
    this.#now = now
  }

  get size (): number {
    return this.#states.size
  }

  /** Forgets `key` (a reset). */
  delete (key: string): void {
    this.#states.delete(key)
  }

  /** `n` = 0 reads the count without taking. `w` is the window in ms (k × g by default). */
  take (key: string, limit: number, g: number, k: number, n: number, w: number = g * k): Take {
    const now = this.#now()
    const cur = Math.floor(now / g)
    const first = Math.floor((now - w) / g)
    const ring = k + 1
    let state = this.#states.get(key)
    if (state === undefined || state.counts.length !== ring) {
      if (n === 0) return { admitted: 0, count: 0, retryMs: w + 1 }
      state = { counts: new Uint32Array(ring), sum: 0, oldest: cur, last: now }
      this.#states.set(key, state)
    }
    if (state.sum > 0 && (now > state.last + w || first - state.oldest > ring)) {
      state.counts.fill(0)
      state.sum = 0
    } else if (state.sum > 0 && state.oldest < first) {
      let j = state.oldest
      for (; j < first; j++) {
        state.sum -= state.counts[j % ring] ?? 0
        state.counts[j % ring] = 0
      }
      while (state.sum > 0 && j < cur && state.counts[j % ring] === 0) j++
      state.oldest = j
    }
    if (state.sum <= 0) {
      state.sum = 0
      state.oldest = cur
    }
    const admitted = Math.max(0, Math.min(n, limit - state.sum))
    if (admitted > 0) {
      state.counts[cur % ring] = (state.counts[cur % ring] ?? 0) + admitted
      state.sum += admitted
      state.last = now
    }
    return { admitted, count: state.sum, retryMs: retryOf(state, g, w, now) }
  }
}

/** Milliseconds until the count next drops: never more than w + 1. */
function retryOf (state: LocalState, g: number, w: number, now: number): number {
  if (state.sum === 0) return w + 1
  return state.oldest === Math.floor(state.last / g) ? state.last + w + 1 - now : (state.oldest + 1) * g + w - now
}
