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
 * The window of W ms is counted in k sub-windows of g = ceil(W / k) ms. A
 * request is admitted when the k + 1 sub-windows overlapping (now - W, now]
 * hold fewer than `limit`. Every rolling window (a, a + W] lies inside the
 * sub-windows some later admission checked, so no rolling window ever admits
 * more than `limit` (a fixed window admits 2 × limit - 1 across a boundary,
 * GCRA with a burst of `limit` admits up to 2 × limit - 1 in W as well). The
 * price is that quota frees up to g ms later than an exact log, whose memory
 * grows with `limit`; here it is k + 3 hash fields whatever the limit.
 *
 * One key per call (Cluster-safe), TIME inside the script (no clock skew
 * between instances), `n` requests per call so concurrent requests for one
 * key share a round trip. Fields: `s` = sum, `o` = oldest sub-window held,
 * `<index>` = count of that sub-window.
 *
 * ARGV: limit, g (ms), k, n. Returns { admitted, count, retryMs }.
 */
export const SLIDING_WINDOW_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local g = tonumber(ARGV[2])
local k = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = math.floor(now / g)
local first = cur - k
local st = redis.call('HMGET', key, 's', 'o')
local s = tonumber(st[1]) or 0
local o = tonumber(st[2]) or cur
local dirty = false
if s > 0 and o < first then
  dirty = true
  if first - o > 2 * k + 4 then
    redis.call('DEL', key)
    s = 0
  else
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
  dirty = true
end
if dirty then
  redis.call('HSET', key, 's', s, 'o', o)
  redis.call('PEXPIRE', key, (k + 2) * g)
end
return { admitted, s, (o + k + 1) * g - now }
`

interface LocalState {
  /** count per sub-window, ring-indexed by sub-window index mod (k + 1) */
  counts: Uint32Array
  sum: number
  oldest: number
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

  take (key: string, limit: number, g: number, k: number, n: number): Take {
    const now = this.#now()
    const cur = Math.floor(now / g)
    const first = cur - k
    let state = this.#states.get(key)
    if (state === undefined || state.counts.length !== k + 1) {
      state = { counts: new Uint32Array(k + 1), sum: 0, oldest: cur }
      this.#states.set(key, state)
    }
    const ring = k + 1
    if (state.sum > 0 && state.oldest < first) {
      if (first - state.oldest > ring) {
        state.counts.fill(0)
        state.sum = 0
      } else {
        let j = state.oldest
        for (; j < first; j++) {
          state.sum -= state.counts[j % ring] ?? 0
          state.counts[j % ring] = 0
        }
        while (state.sum > 0 && j < cur && state.counts[j % ring] === 0) j++
        state.oldest = j
      }
    }
    if (state.sum <= 0) {
      state.sum = 0
      state.oldest = cur
    }
    const admitted = Math.max(0, Math.min(n, limit - state.sum))
    if (admitted > 0) {
      state.counts[cur % ring] = (state.counts[cur % ring] ?? 0) + admitted
      state.sum += admitted
    }
    return { admitted, count: state.sum, retryMs: (state.oldest + k + 1) * g - now }
  }
}
