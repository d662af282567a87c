import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { getHub, metric } from '@headroom/core'
import { Counter } from 'prom-client'
import t from 'tap'
import { headroomHealth, type HealthOptions } from '../src/index.js'
import { sleep, testApp } from '@headroom/testing'

const run = promisify(execFile)
const base = { handleSignals: false, checkIntervalMs: 60_000 } satisfies HealthOptions

async function build (t: { teardown: (fn: () => unknown) => void }, opts: HealthOptions = {}) {
  const app = testApp(t)
  await app.register(headroomHealth, { ...base, ...opts })
  app.get('/users/:id', async () => ({ ok: true }))
  await app.ready()
  return app
}

t.test('the duration histogram uses route templates, puts 404s in one bucket and ignores probes', async (t) => {
  const app = await build(t)
  for (let i = 0; i < 5; i++) await app.inject(`/users/${i}`)
  for (let i = 0; i < 5; i++) await app.inject(`/no/such/path/${i}`)
  for (let i = 0; i < 5; i++) {
    await app.inject('/health')
    await app.inject('/health/ready')
    await app.inject('/metrics')
  }
  const text = (await app.inject('/metrics')).body
  t.match(text, /headroom_health_http_request_duration_seconds_count\{method="GET",route="\/users\/:id",status_code="200"\} 5/)
  t.match(text, /headroom_health_http_request_duration_seconds_count\{method="GET",route="__unknown__",status_code="404"\} 5/)
  t.notMatch(text, /route="\/no\/such/, 'no raw URL becomes a label')
  t.notMatch(text, /route="\/health/, 'probes are not traffic')
  t.notMatch(text, /route="\/metrics"/, '/metrics is not traffic')
  t.match(text, /headroom_health_http_requests_in_flight 0/)
  t.match(text, /headroom_health_event_loop_delay_seconds \d/)
  t.match(text, /headroom_health_event_loop_utilization \d/)
  t.match(text, /process_cpu_user_seconds_total \d/)
  t.match(text, /nodejs_eventloop_lag_p99_seconds \d/)
  t.match(text, /headroom_health_ready 1/)
  t.match(text, /headroom_health_draining 0/)
})

t.test('the in-flight gauge counts requests being served', async (t) => {
  const app = testApp(t)
  await app.register(headroomHealth, base)
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  app.get('/slow', async () => { await gate; return 'done' })
  const pending = Promise.all([app.inject('/slow'), app.inject('/slow'), app.inject('/slow')])
  await sleep(50)
  t.match((await app.inject('/metrics')).body, /headroom_health_http_requests_in_flight 3/)
  release()
  await pending
  t.match((await app.inject('/metrics')).body, /headroom_health_http_requests_in_flight 0/)
})

t.test('/metrics serves what the other plugins put in the hub registry, and the check results', async (t) => {
  const app = testApp(t)
  const registry = getHub(app).registry
  metric(registry, 'headroom_pool_queries_total', (registers) => new Counter({ name: 'headroom_pool_queries_total', help: 'queries', registers })).inc(3)
  getHub(app).addCheck({ name: 'redis:cache', critical: false, check: async () => ({ status: 'warn' }) })
  await app.register(headroomHealth, base)
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /headroom_pool_queries_total 3/)
  t.match(res.body, /headroom_health_check_status\{check="redis:cache"\} 1/)
})

t.test('/metrics passes promtool check metrics', async (t) => {
  const app = await build(t, { checks: [{ name: 'postgres:primary', check: async () => ({ status: 'pass' }) }] })
  await app.inject('/users/1')
  await app.inject('/nope')
  const text = (await app.inject('/metrics')).body
  const dir = mkdtempSync(join(tmpdir(), 'headroom-health-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'metrics.txt')
  writeFileSync(file, text)
  // promtool reads the exposition on stdin; it exits non-zero on format errors and prints lint problems
  const { stdout, stderr } = await run('sh', ['-c', `promtool check metrics < "${file}"`]).catch((err: { stdout: string, stderr: string, code: number }) => {
    t.fail(`promtool exited ${err.code}: ${err.stderr}${err.stdout}`)
    return err
  })
  t.equal(`${stdout}${stderr}`.trim(), '', 'promtool reports no problem')
})

t.test('/metrics access: private peers by default, never through a proxy, or a bearer token', async (t) => {
  const app = await build(t)
  const get = (remoteAddress: string, headers: Record<string, string> = {}) => app.inject({ url: '/metrics', remoteAddress, headers })
  t.equal((await get('127.0.0.1')).statusCode, 200, 'loopback')
  t.equal((await get('10.1.2.3')).statusCode, 200, 'private 10/8')
  t.equal((await get('::ffff:192.168.1.4')).statusCode, 200, 'IPv4-mapped private')
  t.equal((await get('fd00::1')).statusCode, 200, 'IPv6 unique-local')
  const publicPeer = await get('203.0.113.9')
  t.equal(publicPeer.statusCode, 403, 'a public address is refused')
  t.equal(publicPeer.json().code, 'HEADROOM_HEALTH_METRICS_FORBIDDEN')
  const proxied = await get('10.0.0.5', { 'x-forwarded-for': '203.0.113.9' })
  t.equal(proxied.statusCode, 403, 'a private load balancer relaying a public client is refused')
  t.equal((await get('203.0.113.9', { 'x-forwarded-for': '10.0.0.1' })).statusCode, 403, 'a spoofed X-Forwarded-For changes nothing')

  const tokenApp = await build(t, { metrics: { token: 's3cret', allow: [] } })
  const tokenGet = (headers: Record<string, string>) => tokenApp.inject({ url: '/metrics', remoteAddress: '203.0.113.9', headers })
  t.equal((await tokenGet({ authorization: 'Bearer s3cret' })).statusCode, 200, 'the token works from anywhere')
  const wrong = await tokenGet({ authorization: 'Bearer nope' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'HEADROOM_HEALTH_METRICS_UNAUTHORIZED')
  t.equal((await tokenApp.inject({ url: '/metrics', remoteAddress: '127.0.0.1' })).statusCode, 401, 'allow: [] means token only')

  const openApp = await build(t, { metrics: { allow: ['0.0.0.0/0', '::/0'] } })
  t.equal((await openApp.inject({ url: '/metrics', remoteAddress: '203.0.113.9' })).statusCode, 200, 'allow can open it up')
})

t.test('metrics: false serves no /metrics, still collects HTTP metrics in the hub registry', async (t) => {
  const app = await build(t, { metrics: false })
  t.equal((await app.inject('/metrics')).statusCode, 404)
  await app.inject('/users/1')
  t.match(await getHub(app).registry.metrics(), /route="\/users\/:id"/)
})

t.test('a client that goes away before its answer leaves the in-flight gauge', async (t) => {
  const app = testApp(t)
  await app.register(headroomHealth, base)
  app.get('/slow', async () => { await sleep(300); return 'late' })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const { request } = await import('node:http')
  const req = request(`${address}/slow`)
  req.on('error', () => {})
  req.end()
  await sleep(100)
  t.match((await app.inject('/metrics')).body, /headroom_health_http_requests_in_flight 1/)
  req.destroy()
  await sleep(400)
  t.match((await app.inject('/metrics')).body, /headroom_health_http_requests_in_flight 0/, 'back to 0 after the abort')
})

t.test('the probes and /metrics opt out of rate limiting with config.rateLimit = false', async (t) => {
  const app = testApp(t)
  const configs = new Map<string, unknown>()
  app.addHook('onRoute', (route) => { configs.set(route.url, route.config) })
  await app.register(headroomHealth, base)
  await app.ready()
  for (const path of ['/health', '/health/ready', '/metrics']) t.match(configs.get(path), { rateLimit: false }, path)
})
