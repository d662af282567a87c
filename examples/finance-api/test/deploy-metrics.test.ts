/**
 * The metric names the rules and the dashboard are checked against
 * (promql.ts reads them from the packages' metrics.ts) are the ones a running
 * example exposes: the app on a private primary, a streaming replica and an
 * isolated Redis, its /metrics read after a few requests.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { DEPLOY_DIR } from './deploy-files.js'
import { Client, replicatedApp } from './helpers.js'
import { exportedMetrics, metricNames } from './promql.js'

t.test('every metric the rules and the dashboard name is in a running example\'s /metrics, with its type', async (t) => {
  const { app } = await replicatedApp(t)
  const c = new Client(app)
  await c.signup('metrics@example.com', 'long enough password')
  await c.get('/api/accounts')
  await c.get('/api/summary')
  const body = (await app.inject('/metrics')).body as string

  const live = new Map<string, string>()
  for (const m of body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) live.set(m[1]!, m[2]!)
  const exported = exportedMetrics()
  for (const name of exported.names) {
    t.ok(live.has(name), `${name} (from metrics.ts) is exposed`)
    if (live.has(name)) t.equal(live.get(name) === 'histogram', exported.histograms.has(name), `${name}: ${live.get(name)}`)
  }

  const rules = parse(await readFile(join(DEPLOY_DIR, 'prometheus/rules/finance-api.rules.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ record?: string, expr: string }> }> }
  const all = rules.groups.flatMap((g) => g.rules)
  const recorded = new Set(all.flatMap((r) => r.record === undefined ? [] : [r.record]))
  const dashboard = JSON.parse(await readFile(join(DEPLOY_DIR, 'grafana/finance-api.json'), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> }
  const exprs = [...all.map((r) => r.expr), ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((q) => q.expr))]
  const used = new Set(exprs.flatMap((e) => metricNames(e)).filter((n) => !recorded.has(n) && n !== 'up'))
  t.ok(used.size >= 25, `${used.size} metric names used`)
  for (const name of used) {
    const base = /^(.+)_(?:bucket|sum|count)$/.exec(name)?.[1]
    const family = live.has(name) ? name : base
    t.ok(family !== undefined && live.has(family), `${name} is exposed`)
    if (family !== name) t.equal(live.get(family!), 'histogram', `${name}: a series of the histogram ${family}`)
  }
  // the series the SLO rules read exist, with the labels they use
  t.match(body, /headroom_health_http_request_duration_seconds_bucket\{[^}]*le="0.25"[^}]*\}/, 'the 250 ms bucket')
  t.match(body, /headroom_health_http_request_duration_seconds_count\{[^}]*route="[^"]+"[^}]*status_code="\d{3}"/, 'route and status_code labels')
  t.match(body, /headroom_pool_replica_lag_seconds\{pool="[^"]+"\}/, 'replica lag by pool')
  t.match(body, /headroom_pool_connections\{pool="[^"]+",state="waiting"\}/, 'pool connections by state')
})
