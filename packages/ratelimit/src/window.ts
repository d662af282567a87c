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
 * admission at time a counts until a + W (inclusive): for every sub-window
 * but the newest, a is taken to be the sub-window's last millisecond; for the
 * newest, the time of the last admission `l` (no later admission exists in
 * it). A request is admitted while the counted admissions are fewer than
 * `limit`, so every closed interval of length W (every rolling window) holds
 * at most `limit` admissions (a fixed window admits 2 × limit - 1 across a
 * boundary, GCRA with a burst of `limit` admits up to 2 × limit - 1 in W as
 * well). Quota frees at most g ms later than an exact log would, whose
 * memory grows with `limit`; here it is at most k + 4 hash fields whatever
 * the limit. The time until the count next drops is therefore never more
 * than W + 1 ms: `Retry-After` never exceeds the window.
 *
 * One key per call (Cluster-safe), TIME inside the script (no clock skew
 * between instances), `n` requests per call so concurrent requests for one
 * key share a round trip; `n` = 0 reads the count without taking. Fields:
 * `s` = sum, `o` = oldest sub-window held, `l` = last admission (ms),
 * `<index>` = count of that sub-window.
 *
 * ARGV: limit, g (ms), k, n, W (ms). Returns { admitted, count, retryMs }.
 */
export const SLIDING_WINDOW_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local g = tonumber(ARGV[2])
local k = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local w = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = math.floor(now / g)
local first = math.floor((now - w) / g)
local st = redis.call('HMGET', key, 's', 'o', 'l')
local s = tonumber(st[1]) or 0
local o = tonumber(st[2]) or cur
local l = tonumber(st[3]) or now
local dirty = false
if s > 0 and (now > l + w or first - o > 2 * k + 4) then
  redis.call('DEL', key)
  s = 0
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
    while j < cur and redis.call('HEXISTS', key, j) == 0 do j = j + 1 end
    o = j
  end
end
if s <= 0 then
  s = 0
  o = cur
end
local admitted = limit - s
if admitted > n then admitted = n end
if admitted < 0 then admitted = 0 end
if admitted > 0 then
  redis.call('HINCRBY', key, cur, admitted)
  s = s + admitted
  l = now
  dirty = true
end
if dirty then
  if s > 0 then
    redis.call('HSET', key, 's', s, 'o', o, 'l', l)
    redis.call('PEXPIRE', key, l + w + 1 - now)
  else
    redis.call('DEL', key)
  end
end
local retry = w + 1
if s > 0 then
  if o == math.floor(l / g) then retry = l + w + 1 - now else retry = (o + 1) * g + w - now end
end
return { admitted, s, retry }
`

/** What a window's arguments come from (a resolved policy). */
export interface WindowShape { limit: number, granularityMs: number, buckets: number, windowMs: number }

/**
 * SLIDING_WINDOW_LUA's ARGV after the key, in its order (limit, g, k, n, W):
 * the one place that knows that order (LocalWindow.take's typed parameters
 * keep their own, without an array on the local hot path).
 */
export function windowArgs (w: WindowShape, n: number): [number, number, number, number, number] {
  return [w.limit, w.granularityMs, w.buckets, n, w.windowMs]
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
