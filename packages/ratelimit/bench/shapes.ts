import type { BenchRequest } from '@headroom/benchmarks'

/** A seeded PRNG (mulberry32), so every run and every variant sends the same trace. */
function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const request = (client: number): BenchRequest => ({ path: '/', headers: { 'x-client-id': `c${client}` } })

/** One request per client, `clients` clients in a shuffled order. */
export function uniform (clients: number, seed = 1): BenchRequest[] {
  const next = random(seed)
  const ids = Array.from({ length: clients }, (_, i) => i)
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[ids[i], ids[j]] = [ids[j]!, ids[i]!]
  }
  return ids.map(request)
}

/**
 * `length` requests whose clients follow a Zipf law of exponent `s` over
 * `clients` clients: client k (1-based rank) sends a share proportional to
 * 1 / k^s (s = 1.1 over 10,000, 20,000 requests: the top client sends ~15 %,
 * the top 10 ~41 %, the top 100 ~65 %; 3,326 distinct clients appear).
 */
export function zipf (clients: number, s: number, length: number, seed = 1): BenchRequest[] {
  const next = random(seed)
  const cdf = new Float64Array(clients)
  let total = 0
  for (let k = 0; k < clients; k++) cdf[k] = total += 1 / Math.pow(k + 1, s)
  return Array.from({ length }, () => {
    const u = next() * total
    let lo = 0
    let hi = clients - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return request(lo)
  })
}
