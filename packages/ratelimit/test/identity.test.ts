import t from 'tap'
import { isolatedRedis } from '@headroom/testing'
import { buildApp, ready, redisClient } from './helpers.js'

async function buckets (redis: import('ioredis').Redis, prefix: string): Promise<string[]> {
  const keys = await redis.keys(`${prefix}default:*`)
  return keys.map((k) => k.slice(`${prefix}default:`.length)).sort()
}

function randomIPv4 (i: number): string {
  return `203.0.${Math.floor(i / 250)}.${(i % 250) + 1}`
}

t.test('an untrusted peer rotating X-Forwarded-For is one bucket', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, { redis, prefix, limit: 5 })
  const codes: number[] = []
  for (let i = 0; i < 20; i++) {
    const res = await app.inject({ url: '/', remoteAddress: '198.51.100.7', headers: { 'x-forwarded-for': randomIPv4(i), 'x-real-ip': randomIPv4(i + 1) } })
    codes.push(res.statusCode)
  }
  t.same(await buckets(redis, prefix), ['ip:198.51.100.7'], 'one bucket, the peer address')
  t.equal(codes.filter((c) => c === 200).length, 5, 'and the limit holds')
})

t.test('behind a trusted proxy: one bucket per forwarded client; other peers still by their own address', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, { redis, prefix, limit: 5 }, undefined, { trustProxy: '10.0.0.1' })
  for (let i = 0; i < 20; i++) {
    await app.inject({ url: '/', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': randomIPv4(i) } })
  }
  const forwarded = await buckets(redis, prefix)
  t.equal(forwarded.length, 20, 'twenty forwarded clients, twenty buckets')
  t.same(forwarded, Array.from({ length: 20 }, (_, i) => `ip:${randomIPv4(i)}`).sort())
  await app.inject({ url: '/', remoteAddress: '10.9.9.9', headers: { 'x-forwarded-for': '203.0.113.99' } })
  t.ok((await buckets(redis, prefix)).includes('ip:10.9.9.9'), 'a peer that is not the trusted proxy is keyed by its socket address')
  t.notOk((await buckets(redis, prefix)).includes('ip:203.0.113.99'), 'its forwarded header is ignored')
})

t.test('100 addresses inside one IPv6 /64 are one bucket', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, { redis, prefix, limit: 10 })
  const codes: number[] = []
  for (let i = 0; i < 100; i++) {
    const host = `2001:db8:abcd:12:${((i * 7919) & 0xffff).toString(16)}:${i.toString(16)}:beef:${(i + 1).toString(16)}`
    codes.push((await app.inject({ url: '/', remoteAddress: host })).statusCode)
  }
  t.same(await buckets(redis, prefix), ['ip:2001:db8:abcd:12::'], 'one bucket named by the /64')
  t.equal(codes.filter((c) => c === 200).length, 10, 'so rotating addresses does not multiply the quota')
  await app.inject({ url: '/', remoteAddress: '2001:db8:abcd:13::1' })
  await app.inject({ url: '/', remoteAddress: '::ffff:192.0.2.1' })
  t.same(await buckets(redis, prefix), ['ip:192.0.2.1', 'ip:2001:db8:abcd:12::', 'ip:2001:db8:abcd:13::'],
    'the neighbouring /64 is another client; an IPv4-mapped address is its IPv4 client')
})
