import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import { defineScenario } from '@headroom/benchmarks'
import headroomCache from '../src/index.js'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench-l1-get-${process.pid}-${Date.now()}:`
const value = { symbol: 'ACME', price: 123.45, change: -0.12, volume: 1_234_567, at: '2026-11-25T10:00:00.000Z', history: [120.1, 121.3, 122.8, 123.45] }

/**
 * L1 `get` of a small quote object: headroom's L1 against bentocache's
 * memory tier, each in front of Redis (tiered), both deserializing a copy
 * per call. Only the in-process hit path is timed: neither touches Redis.
 */
export default defineScenario({
  kind: 'ops',
  name: 'cache-l1-get',
  description: 'L1 get of a cached 200-byte object: headroom vs bentocache (memory L1 + Redis L2), same process',
  baseline: 'bentocache',
  variants: [
    {
      name: 'bentocache',
      setup: async () => {
        const connection = new Redis(REDIS_URL)
        const bento = new BentoCache({
          default: 'tiered',
          stores: {
            tiered: bentostore()
              .useL1Layer(memoryDriver({ maxSize: '64mb', maxItems: 50_000 }))
              .useL2Layer(redisDriver({ connection, prefix: `${prefix}bento` }))
          }
        })
        await bento.set({ key: 'quote:ACME', value, ttl: '1h' })
        return {
          op: () => bento.get({ key: 'quote:ACME' }),
          teardown: async () => { await bento.delete({ key: 'quote:ACME' }); await bento.disconnectAll(); connection.disconnect() }
        }
      }
    },
    {
      name: 'headroom',
      setup: async () => {
        const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
        await new Promise((resolve) => redis.once('ready', resolve))
        const app: FastifyInstance = Fastify({ logger: false })
        await app.register(headroomCache, { redis, prefix, defaults: { ttl: 3_600_000 }, l1: { maxTtl: 3_600_000 } })
        await app.ready()
        await app.cache.set('quote:ACME', value)
        return {
          op: () => app.cache.get('quote:ACME'),
          teardown: async () => { await app.cache.delete('quote:ACME'); await app.close(); redis.disconnect() }
        }
      }
    }
  ],
  checks: [{ variant: 'headroom', min: 1 }]
})
