import t from 'tap'
import headroomRateLimit, { errors, normalizeOptions, DEFAULT_LIMIT, DEFAULT_WINDOW_MS, type HeadroomRateLimitOptions } from '../src/index.js'
import { testApp } from '@headroom/testing'

t.test('defaults are the seed\'s: 500 requests per 15 minutes, static assets and probes free', async (t) => {
  const o = normalizeOptions()
  t.equal(o.defaultPolicy.limit, 500)
  t.equal(DEFAULT_LIMIT, 500)
  t.equal(o.defaultPolicy.windowMs, 15 * 60_000)
  t.equal(DEFAULT_WINDOW_MS, 900_000)
  t.equal(o.onStoreDown, 'local')
  t.equal(o.hook, 'onRequest')
  t.equal(normalizeOptions({ identify: () => undefined }).hook, 'preHandler', 'identify moves the check after authentication')
  t.ok(o.staticExtensions.has('js') && o.staticExtensions.has('ico') && o.staticExtensions.has('woff2') && o.staticExtensions.has('map'))
  t.same([...o.skipPaths], ['/health', '/health/ready', '/metrics'])
  t.equal(normalizeOptions({ window: '1 minute' }).defaultPolicy.windowMs, 60_000)
})

const bad: Array<[string, unknown]> = [
  ['limit', 0],
  ['limit', 1.5],
  ['window', '15 fortnights'],
  ['window', -1],
  ['buckets', 0],
  ['onStoreDown', 'maybe'],
  ['identify', 'user'],
  ['hook', 'onSend'],
  ['ipv6Subnet', 129],
  ['staticAssets', 'yes'],
  ['skipPaths', '/health'],
  ['localBlock', true],
  ['legacyHeaders', 'yes'],
  ['policies', { login: { limit: 5 } }],
  ['max', 100],
  ['timeWindow', 60000]
]

for (const [name, value] of bad) {
  t.test(`bad option ${name}=${JSON.stringify(value)} fails at register naming it`, async (t) => {
    const app = testApp(t)
    app.register(headroomRateLimit, { [name]: value } as HeadroomRateLimitOptions)
    const err = await app.ready().then(() => null, (e: Error) => e)
    t.ok(err instanceof errors.InvalidOption, 'InvalidOption')
    t.equal((err as { code?: string } | null)?.code, 'HEADROOM_RATELIMIT_INVALID_OPTION')
    t.match(err?.message, new RegExp(`"${name}`))
  })
}

t.test('route configs that cannot be honoured fail at ready, naming the route and option', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ban: 3 }, /config\.rateLimit of GET \/r\.ban/],
    [{ max: () => 5 }, /config\.rateLimit of GET \/r\.max/],
    [{ timeWindow: 'soon' }, /timeWindow/],
    [{ groupId: 'login', max: 3 }, /names a policy/],
    [{ hook: 'onSend' }, /hook/]
  ]
  for (const [config, message] of cases) {
    const app = testApp(t)
    app.register(headroomRateLimit, { policies: { login: { limit: 5, window: '1m' } } })
    app.register(async (app) => { app.get('/r', { config: { rateLimit: config } }, async () => 'x') })
    const err = await app.ready().then(() => null, (e: Error) => e)
    t.match(err, { code: 'HEADROOM_RATELIMIT_INVALID_OPTION', message }, JSON.stringify(config))
  }
  const app = testApp(t)
  app.register(headroomRateLimit)
  app.register(async (app) => {
    app.get('/a', { config: { rateLimit: { groupId: 'g', max: 5, timeWindow: '1m' } } }, async () => 'x')
    app.get('/b', { config: { rateLimit: { groupId: 'g', max: 6 } } }, async () => 'x')
  })
  await t.rejects(async () => { await app.ready() }, { message: /group "g" is already 5 per 60000 ms/ }, 'one group, two different quotas')
})
