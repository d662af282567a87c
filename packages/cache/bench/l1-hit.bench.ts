import { Redis } from 'ioredis'
import { defineScenario } from '@headroom/benchmarks'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * GET of a cached response served from L1 against a bare route sending the
 * same payload as ready bytes (the baseline: what a hit costs, lookup, hooks
 * and headers, with nothing skipped on either side), and against a bare
 * route serializing it on every request (secondary: what a hit saves on a
 * route that serializes). No I/O on any side, so this is the floor, not the
 * saving (the saving is in cache-zipf).
 */
export default defineScenario({
  kind: 'http',
  name: 'cache-l1-hit',
  description: 'GET of an L1-cached 1.5 KB JSON response vs a bare route sending the same bytes, serialized once (baseline) or per request (bare-serialize)',
  baseline: 'bare-bytes',
  variants: [
    { name: 'bare-bytes', server: new URL('./servers/bare-bytes.ts', import.meta.url) },
    { name: 'bare-serialize', server: new URL('./servers/bare.ts', import.meta.url) },
    { name: 'headroom', server: new URL('./servers/cached.ts', import.meta.url) }
  ],
  requests: () => [{ path: '/portfolio/summary' }],
  setup: async () => {
    const prefix = `bench-l1-hit-${process.pid}-${Date.now()}:`
    return {
      env: { CACHE_PREFIX: prefix, REDIS_URL },
      teardown: async () => {
        const redis = new Redis(REDIS_URL)
        const keys = await redis.keys(`${prefix}*`)
        if (keys.length > 0) await redis.unlink(...keys)
        redis.disconnect()
      }
    }
  },
  // 0.92-0.97 measured by hand against ready bytes (issue #18); the floor leaves the 2-core noise room
  checks: [{ variant: 'headroom', min: 0.8 }, { variant: 'headroom', against: 'bare-serialize', min: 0.9 }]
})
