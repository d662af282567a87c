import { Redis } from 'ioredis'
import { defineScenario } from '@headroom/benchmarks'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * GET of a cached response served from L1 against a bare route building the
 * same payload. Measures what the cache costs on a hit (hooks, lookup,
 * headers); the bare route does no I/O either, so this is the floor, not the
 * saving (the saving is in cache-zipf).
 */
export default defineScenario({
  kind: 'http',
  name: 'cache-l1-hit',
  description: 'GET of an L1-cached 1.5 KB JSON response vs a bare route returning the same payload',
  baseline: 'bare',
  variants: [
    { name: 'bare', server: new URL('./servers/bare.ts', import.meta.url) },
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
  checks: [{ variant: 'headroom', min: 0.9 }]
})
