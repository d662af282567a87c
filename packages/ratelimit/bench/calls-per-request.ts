/**
 * Redis calls per request by client rate, independent of the machine's speed:
 * `clients` clients each send one request every 1000 / rate ms (open loop,
 * random phase) to one instance for `seconds`, through `inject` (no HTTP);
 * the calls come from `headroom_ratelimit_redis_calls_total`. The window is
 * the benchmark's `'1m'` (60 sub-windows of 1 s, so a lease of up to 5 s).
 *
 *   pnpm exec tsx packages/ratelimit/bench/calls-per-request.ts [clients] [seconds] [rates...]
 *
 * LEASE_MS sets `reserve.leaseMs` (default: the plugin's).
 */
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { getHub } from '@headroom/core'
import headroomRateLimit from '../src/index.js'

const [clients = 100, seconds = 6, ...rest] = process.argv.slice(2).map(Number)
const rates = rest.length > 0 ? rest : [1, 2, 5, 10, 20]
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench:calls:${process.pid}:`

async function metric (app: ReturnType<typeof Fastify>, name: string): Promise<number> {
  const text = await getHub(app).registry.metrics()
  return [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0)
}

const redis = new Redis(redisUrl, { enableOfflineQueue: false })
await new Promise((resolve) => redis.once('ready', resolve))
const leaseMs = process.env.LEASE_MS === undefined ? undefined : Number(process.env.LEASE_MS)
console.log(`${clients} clients, ${seconds} s per rate, window '1m', reserve.leaseMs ${leaseMs ?? 'default'}`)
console.log('| requests per second per client | requests | Redis calls | calls per request |')
console.log('|---|---|---|---|')
for (const rate of rates) {
  const app = Fastify({ logger: false })
  await app.register(headroomRateLimit, {
    redis,
    limit: 1_000_000_000,
    window: '1m',
    prefix: `${prefix}${rate}:`,
    identify: (request) => request.headers['x-client-id'] as string,
    hook: 'onRequest',
    ...(leaseMs !== undefined && { reserve: { leaseMs } })
  })
  app.get('/', async () => 'ok')
  await app.ready()
  const until = performance.now() + seconds * 1000
  const interval = 1000 / rate
  await Promise.all(Array.from({ length: clients }, async (_, i) => {
    await new Promise((resolve) => setTimeout(resolve, Math.random() * interval))
    let next = performance.now()
    while (next < until) {
      app.inject({ url: '/', headers: { 'x-client-id': `c${i}` } }).catch((err: Error) => { console.error(err) })
      next += interval
      const wait = next - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }))
  await new Promise((resolve) => setTimeout(resolve, 200))
  const requests = await metric(app, 'headroom_ratelimit_requests_total')
  const calls = await metric(app, 'headroom_ratelimit_redis_calls_total')
  console.log(`| ${rate} | ${requests} | ${calls} | ${(calls / Math.max(1, requests)).toFixed(3)} |`)
  await app.close()
}
// the keys (under bench:calls:<pid>:) expire a window after their last request
await redis.quit()
