/**
 * The monitoring of deploy/ on a real Prometheus server: Debian's
 * `prometheus` scrapes a running example (its own Redis, the shared
 * PostgreSQL) every second and evaluates the repository's rules file, as it
 * is, every second. The series every dashboard query names exist once the
 * example has served some traffic; killing the example's Redis makes the
 * session and rate-limit fallback alerts go pending, then firing after their
 * `for: 1m`, and the cache alert pending; Redis back, all three resolve.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isolatedSchema, sleep, startRedis, waitFor } from '@headroom/testing'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { start } from '../src/server.js'
import { DEPLOY_DIR } from './deploy-files.js'
import { Client } from './helpers.js'
import { prometheusInstalled, startPrometheus, type Prometheus } from './prometheus.js'
import { metricNames } from './promql.js'

// one minute of `for:` to wait out, one more for the rate-limit alert's
// window to empty after Redis returns, on a loaded machine: above tap's 180 s
t.setTimeout(300_000)

const RULES = join(DEPLOY_DIR, 'prometheus/rules/finance-api.rules.yml')

/** Dashboard metrics with no series on this single instance, and why; every one must still be a dashboard metric. */
const NO_SERIES_HERE: Record<string, string> = {
  // replica topology: the pool has no replica here (DATABASE_REPLICA_URLS unset)
  headroom_pool_replica_lag_seconds: 'replicas only',
  headroom_pool_replica_up: 'replicas only',
  headroom_pool_replica_ejections_total: 'replicas only',
  // counters with labels get their first series at their first event, which a
  // healthy instance does not have: a lost or timed-out connection, a client
  // held past leakDetectionMs, a request shed under overload
  headroom_pool_errors_total: 'first pool error',
  headroom_pool_leaks_total: 'first leaked client',
  headroom_health_shed_requests_total: 'first shed request'
}
/** Dashboard metrics whose first series comes with a Redis outage (counters of failed Redis calls and fallback decisions). */
const OUTAGE_ONLY = ['headroom_cache_l2_errors_total', 'headroom_ratelimit_fallback_total']
const ALERTS = ['FinanceApiSessionFallbackActive', 'FinanceApiRateLimitFallbackActive', 'FinanceApiCacheDegraded'] as const

function dashboardMetrics (): string[] {
  const d = JSON.parse(readFileSync(join(DEPLOY_DIR, 'grafana/finance-api.json'), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> }
  return [...new Set(d.panels.flatMap((p) => (p.targets ?? []).flatMap((q) => metricNames(q.expr))))].sort()
}

/** Which of `names` Prometheus has no series of right now. */
async function missing (prom: Prometheus, names: string[]): Promise<string[]> {
  const present = new Set((await prom.query('count by (__name__) ({__name__=~"headroom_.+|job:.+|up"})')).map((s) => s.metric.__name__))
  return names.filter((n) => !present.has(n))
}

/**
 * A user and a few more requests, in a loop until stopped: writes, summaries
 * read four at once (coalesced waits, hits), quotes (stale served on the
 * provider's failures), a login now and then. Every answer's status is kept.
 */
class Traffic {
  readonly statuses: Array<{ path: string, status: number }> = []
  #running = false
  #loop: Promise<void> = Promise.resolve()
  readonly #client: Client
  #account = ''
  constructor (base: string) { this.#client = new Client(base) }

  async begin (): Promise<void> {
    const c = this.#client
    if ((await c.signup('prometheus-e2e@example.com', 'long enough password')).status !== 201) throw new Error('signup failed')
    this.#account = (await c.get('/api/accounts')).body.items[0].id
    this.#running = true
    this.#loop = this.#run()
  }

  async #request (method: 'GET' | 'POST', path: string, body?: unknown): Promise<void> {
    try {
      const r = await this.#client.request(method, path, body)
      this.statuses.push({ path, status: r.status })
    } catch {
      this.statuses.push({ path, status: 0 })
    }
  }

  async #run (): Promise<void> {
    for (let i = 0; this.#running; i++) {
      await this.#request('POST', '/api/transactions', { accountId: this.#account, amountCents: 100 + i, category: 'misc' })
      await Promise.all(Array.from({ length: 4 }, () => this.#request('GET', '/api/summary')))
      await this.#request('GET', '/api/summary')
      await this.#request('GET', '/api/accounts')
      await this.#request('GET', '/api/quotes')
      if (i % 10 === 0) await this.#request('POST', '/api/auth/login', { email: 'prometheus-e2e@example.com', password: 'long enough password' })
      await sleep(100)
    }
  }

  async stop (): Promise<void> {
    this.#running = false
    await this.#loop
  }
}

const installed = prometheusInstalled()
// CI runs it, always: a missing binary there is a failure, never a skip
if (!installed && process.env.CI) throw new Error('prometheus is not installed: CI must run this test (.ci/needs lists the Debian package)')

t.test('a real Prometheus scrapes the example: the dashboard\'s series exist; a Redis outage drives the fallback alerts pending, firing, resolved', {
  skip: installed ? false : 'prometheus is not installed (apt-get install prometheus)'
}, async (t) => {
  const began = Date.now()
  const seconds = () => `${((Date.now() - began) / 1000).toFixed(1)} s`
  const { url } = await isolatedSchema(t)
  const redis = await startRedis(t)
  const running = await start(loadConfig({
    PORT: '0',
    DATABASE_URL: url,
    MIGRATE_ON_START: 'true',
    REDIS_URL: redis.url,
    LOG_LEVEL: 'silent',
    INSIGHTS_COST_MS: '0',
    // quotes expire every second and the provider fails often: stale values get served
    MARKET_LATENCY_MS: '0',
    MARKET_FAILURE_RATE: '0.3',
    QUOTE_TTL_S: '1',
    // the loop's few thousand requests stay under the limits (429s would be fine, but say nothing here)
    RATE_LIMIT_MAX: '1000000',
    LOGIN_RATE_LIMIT_MAX: '10000'
  }))
  const traffic = new Traffic(running.url)
  t.teardown(async () => {
    await traffic.stop()
    await running.close()
  })
  const prom = await startPrometheus(t, { targets: [new URL(running.url).host], ruleFiles: [RULES] })
  await traffic.begin()
  t.comment(`app, Redis and Prometheus started, traffic running: ${seconds()}`)

  const state = async (alert: string) => (await prom.alerts()).find((a) => a.labels.alertname === alert)
  const dashboard = dashboardMetrics()
  for (const name of [...Object.keys(NO_SERIES_HERE), ...OUTAGE_ONLY]) t.ok(dashboard.includes(name), `${name} is a metric of the dashboard`)

  await t.test('the target is up and every dashboard metric has a series (but the outage\'s and the exceptions)', async (t) => {
    await waitFor('the example\'s target to be up', async () => (await prom.targets()).some((x) => x.health === 'up'), 60_000, 250)
    const [target] = await prom.targets()
    t.equal(target?.scrapeUrl, `${running.url}/metrics`, 'the target is the example\'s /metrics')
    t.equal(target?.labels.job, 'finance-api', 'as job finance-api, the job the rules and dashboard read')
    const expected = dashboard.filter((n) => !(n in NO_SERIES_HERE) && !OUTAGE_ONLY.includes(n))
    t.ok(expected.length >= 25, `${expected.length} of the dashboard's ${dashboard.length} metric names expected`)
    let left: string[] = expected
    await waitFor('every expected series', async () => (left = await missing(prom, expected)).length === 0, 60_000, 500).catch(() => {})
    t.same(left, [], 'no dashboard metric without a series')
    for (const alert of ALERTS) t.equal(await state(alert), undefined, `${alert} not active while Redis is up`)
    t.comment(`dashboard series checked: ${seconds()}`)
  })

  const seen = new Map<string, { pendingAt?: number, firingAt?: number, activeAt?: string }>(ALERTS.map((a) => [a, {}]))
  const watch = async () => {
    const active = await prom.alerts()
    for (const alert of ALERTS) {
      const a = active.find((x) => x.labels.alertname === alert)
      const s = seen.get(alert)!
      if (a?.state === 'pending') s.pendingAt ??= Date.now()
      if (a?.state === 'firing') s.firingAt ??= Date.now()
      if (a) s.activeAt ??= a.activeAt
    }
  }

  await t.test('Redis killed: the session and rate-limit fallback alerts go pending, then firing after their for: 1m; the cache alert pending', async (t) => {
    await redis.kill()
    const killedAt = Date.now()
    await waitFor('the three alerts to be pending', async () => {
      await watch()
      return ALERTS.every((a) => seen.get(a)!.pendingAt !== undefined)
    }, 60_000, 250).catch((err: Error) => { throw new Error(`${err.message}; seen: ${JSON.stringify(Object.fromEntries(seen))}`) })
    t.comment(`all three pending ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill (${seconds()})`)
    await waitFor('the session and rate-limit alerts to fire', async () => {
      await watch()
      return seen.get('FinanceApiSessionFallbackActive')!.firingAt !== undefined && seen.get('FinanceApiRateLimitFallbackActive')!.firingAt !== undefined
    }, 150_000, 250).catch((err: Error) => { throw new Error(`${err.message}; seen: ${JSON.stringify(Object.fromEntries(seen))}`) })
    for (const alert of ['FinanceApiSessionFallbackActive', 'FinanceApiRateLimitFallbackActive']) {
      const s = seen.get(alert)!
      t.ok(s.pendingAt! < s.firingAt!, `${alert}: pending first`)
      const held = s.firingAt! - Date.parse(s.activeAt!)
      t.ok(held >= 59_000, `${alert}: fired ${(held / 1000).toFixed(1)} s after it became active (for: 1m)`)
      const a = await state(alert)
      t.equal(a?.labels.severity, 'page', `${alert}: severity page`)
      t.equal(a?.labels.instance, new URL(running.url).host, `${alert}: the instance is named`)
    }
    t.equal((await state('FinanceApiCacheDegraded'))?.state, 'pending', 'the cache alert is still pending (for: 5m)')
    t.same(await missing(prom, OUTAGE_ONLY), [], 'the outage\'s series exist now')
    t.ok((await prom.targets()).every((x) => x.health === 'up'), 'the target stayed up')
    t.comment(`session and rate-limit alerts firing: ${seconds()}`)
  })

  await t.test('Redis back on the same port: the three alerts resolve', async (t) => {
    await redis.start()
    const restartedAt = Date.now()
    const resolvedAfter = new Map<string, number>()
    await waitFor('every alert to resolve', async () => {
      const active = new Set((await prom.alerts()).map((a) => a.labels.alertname))
      for (const alert of ALERTS) if (!active.has(alert) && !resolvedAfter.has(alert)) resolvedAfter.set(alert, Date.now() - restartedAt)
      return resolvedAfter.size === ALERTS.length
    }, 150_000, 250)
    t.comment(`resolved after Redis returned: ${[...resolvedAfter].map(([a, ms]) => `${a} ${(ms / 1000).toFixed(1)} s`).join(', ')} (${seconds()})`)
    // resolved because the example says Redis is back, not because a failed scrape made the series stale
    const value = async (expr: string) => (await prom.query(expr)).map((s) => Number(s.value[1]))
    t.same(await value('headroom_session_fallback_active'), [0], 'the session fallback gauge reads 0')
    t.same(await value('headroom_cache_degraded'), [0], 'the cache degraded gauge reads 0')
    t.same(await value('sum(rate(headroom_ratelimit_fallback_total[1m]))'), [0], 'no rate-limit decision without Redis in the last minute')
    t.same(await missing(prom, dashboard.filter((n) => !(n in NO_SERIES_HERE))), [], 'every dashboard series but the exceptions exists')
  })

  await traffic.stop()
  const statuses = traffic.statuses
  // the quotes route answers 503 when every quote fails and none is cached: the provider's outage, not ours
  const failed = statuses.filter((s) => s.status === 0 || (s.status >= 500 && !(s.path === '/api/quotes' && s.status === 503)))
  t.same(failed, [], `no 5xx and no failed request in ${statuses.length}`)
  t.comment(`total ${seconds()}`)
})
