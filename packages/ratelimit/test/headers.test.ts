import t, { type Test } from 'tap'
import { isolatedRedis } from '@headroom/testing'
import { QUOTA_EXCEEDED_TYPE } from '../src/index.js'
import { buildApp, ready, redisClient } from './helpers.js'
import { parseList, type Item } from './sf.js'

/** draft-10 §5.1 RateLimit-Policy: a List of quota policy items, each a String with q (required, Integer), w, qu, pk. */
function checkPolicy (t: Test, value: string | undefined): Item {
  const list = parseList(value ?? '')
  t.equal(list.length, 1, 'one policy item')
  const item = list[0] as Item
  t.type(item.value, 'string', 'the item is an sf-string naming the policy')
  t.ok(Number.isInteger(item.params.q) && (item.params.q as number) >= 0, 'q: a non-negative Integer')
  t.ok(Number.isInteger(item.params.w) && (item.params.w as number) >= 1, 'w: a positive Integer (seconds)')
  for (const k of Object.keys(item.params)) t.ok(['q', 'qu', 'w', 'pk'].includes(k), `known parameter ${k}`)
  return item
}

/** draft-10 §5.2 RateLimit: a List of service limit items, each a String with r (required, Integer), t, pk. */
function checkLimit (t: Test, value: string | undefined): Item {
  const list = parseList(value ?? '')
  t.equal(list.length, 1, 'one service limit item')
  const item = list[0] as Item
  t.type(item.value, 'string')
  t.ok(Number.isInteger(item.params.r) && (item.params.r as number) >= 0, 'r: a non-negative Integer')
  t.ok(Number.isInteger(item.params.t) && (item.params.t as number) >= 0, 't: a non-negative Integer (seconds)')
  for (const k of Object.keys(item.params)) t.ok(['r', 't', 'pk'].includes(k), `known parameter ${k}`)
  return item
}

t.test('the parser rejects what the grammar rejects (so the checks below can fail)', async (t) => {
  t.throws(() => parseList('default;q=5'.replace('default', '"default')))
  t.throws(() => parseList('"a";q=1;'))
  t.throws(() => parseList('"a";Q=1'))
  t.throws(() => parseList('"a";q=1.2345'))
  t.throws(() => parseList('"a",'))
  t.same(parseList('"a";q=1, "b\\"c";w=2;x'), [{ value: 'a', params: { q: 1 } }, { value: 'b"c', params: { w: 2, x: true } }])
})

t.test('RateLimit-Policy and RateLimit follow draft-10 syntax; 429 carries Retry-After and a problem+json body', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const app = await buildApp(t, { redis, prefix, limit: 2, window: '15m' }, (app) => {
    app.get('/q"uote', { config: { rateLimit: { max: 1, timeWindow: 30_000 } } }, async () => 'ok')
  })
  const first = await app.inject('/')
  const policy = checkPolicy(t, first.headers['ratelimit-policy'] as string)
  t.same(policy, { value: 'default', params: { q: 2, w: 900 } })
  const limit = checkLimit(t, first.headers.ratelimit as string)
  t.equal(limit.value, 'default', 'RateLimit names the same policy')
  t.equal(limit.params.r, 1)
  t.ok((limit.params.t as number) >= 900 && (limit.params.t as number) <= 916, 't: seconds until the count drops, at most one sub-window past w')
  t.equal(first.headers['x-ratelimit-limit'], undefined, 'no legacy headers by default')

  await app.inject('/')
  const refused = await app.inject('/')
  t.equal(refused.statusCode, 429)
  const refusedLimit = checkLimit(t, refused.headers.ratelimit as string)
  t.equal(refusedLimit.params.r, 0)
  const retryAfter = refused.headers['retry-after'] as string
  t.match(retryAfter, /^[0-9]+$/, 'Retry-After: delay-seconds')
  t.ok(Number(retryAfter) >= (refusedLimit.params.t as number), 'Retry-After is not earlier than t')
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
  t.same(refused.json(), {
    type: QUOTA_EXCEEDED_TYPE,
    title: 'Request cannot be satisfied as assigned quota has been exceeded',
    status: 429,
    detail: `Rate limit "default" (2 requests per 900 s) exceeded; retry in ${retryAfter} s`,
    'violated-policies': ['default'],
    code: 'HEADROOM_RATELIMIT_QUOTA_EXCEEDED'
  })

  const quoted = await app.inject('/q%22uote')
  const item = checkPolicy(t, quoted.headers['ratelimit-policy'] as string)
  t.equal(item.value, 'GET /q"uote', 'a route policy name with a quote is escaped as an sf-string')
  t.equal(item.params.w, 30)
})

t.test('legacy X-RateLimit-* headers are opt-in; headers: false sends none', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  const legacy = await buildApp(t, { redis, prefix, limit: 3, legacyHeaders: true })
  const res = await legacy.inject('/')
  t.equal(res.headers['x-ratelimit-limit'], '3')
  t.equal(res.headers['x-ratelimit-remaining'], '2')
  t.match(res.headers['x-ratelimit-reset'], /^[0-9]+$/)
  t.ok(res.headers.ratelimit, 'draft-10 fields still sent')
  const none = await buildApp(t, { redis, prefix: `${prefix}none:`, limit: 3, headers: false })
  const quiet = await none.inject('/')
  t.equal(quiet.headers.ratelimit, undefined)
  t.equal(quiet.headers['ratelimit-policy'], undefined)
})
