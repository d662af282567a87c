/**
 * The Grafana dashboard deploy/grafana/finance-api.json: every panel query
 * parses (promtool check rules on the queries written as recording rules) and
 * names only metrics the packages export; compose provisions it with its
 * datasource. Both checks are shown to fail.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { parse, stringify } from 'yaml'
import { DEPLOY_DIR, loadCompose } from './deploy-files.js'
import { exportedMetrics, run, unknownMetrics } from './promql.js'

interface Panel { id: number, title: string, type: string, datasource?: { uid: string }, targets?: Array<{ expr: string, refId: string }>, panels?: Panel[] }
interface Dashboard { uid: string, title: string, panels: Panel[] }

const DASHBOARD = join(DEPLOY_DIR, 'grafana/finance-api.json')

async function dashboard (): Promise<Dashboard> {
  return JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard
}

/** Every query of every panel (rows' nested panels included), with where it is. */
function queries (d: Dashboard): Array<{ where: string, expr: string }> {
  const out: Array<{ where: string, expr: string }> = []
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const target of p.targets ?? []) out.push({ where: `panel ${p.id} "${p.title}" ${target.refId}`, expr: target.expr })
      walk(p.panels ?? [])
    }
  }
  walk(d.panels)
  return out
}

/** Grafana's variables replaced by what Grafana would put there: a range for the intervals, a regex for the others. */
function concrete (expr: string): string {
  const ranges: Record<string, string> = { __rate_interval: '1m', __interval: '1m', __range: '1h' }
  return expr.replace(/\$\{?(\w+)\}?/g, (_, name: string) => ranges[name] ?? '.*')
}

/** The queries as recording rules, checked by promtool: a parse error fails the check. */
async function checkQueries (t: Test, list: Array<{ expr: string }>): Promise<{ code: number, out: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'finance-dashboard-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const rules = { groups: [{ name: 'dashboard', rules: list.map((q, i) => ({ record: `dashboard:query:${i}`, expr: concrete(q.expr) })) }] }
  await writeFile(join(dir, 'dashboard.rules.yml'), stringify(rules))
  const r = await run('promtool', ['check', 'rules', 'dashboard.rules.yml'], dir)
  return { code: r.code, out: r.stdout + r.stderr }
}

async function recordings (): Promise<Set<string>> {
  const doc = parse(await readFile(join(DEPLOY_DIR, 'prometheus/rules/finance-api.rules.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ record?: string }> }> }
  return new Set([...doc.groups.flatMap((g) => g.rules).flatMap((r) => r.record === undefined ? [] : [r.record]), 'up'])
}

t.test('every panel query parses (promtool check rules)', async (t) => {
  const list = queries(await dashboard())
  t.ok(list.length >= 20, `${list.length} queries`)
  const r = await checkQueries(t, list)
  t.equal(r.code, 0, r.out)
  t.match(r.out, new RegExp(`SUCCESS: ${list.length} rules found`))
})

t.test('a query that does not parse fails the check', async (t) => {
  const r = await checkQueries(t, [{ expr: 'sum by (route) (rate(headroom_health_http_request_duration_seconds_count[$__rate_interval])' }])
  t.not(r.code, 0)
  t.match(r.out, /unclosed left parenthesis|parse error/)
})

t.test('every panel query names only metrics the packages export (or the rules record, or up)', async (t) => {
  const exported = exportedMetrics()
  const also = await recordings()
  const used = new Set<string>()
  for (const q of queries(await dashboard())) {
    t.same(unknownMetrics(q.expr, exported, also), [], `${q.where}: ${q.expr}`)
  }
  for (const q of queries(await dashboard())) for (const m of q.expr.matchAll(/headroom_[a-z]+/g)) used.add(m[0])
  for (const family of ['headroom_health', 'headroom_pool', 'headroom_cache', 'headroom_session', 'headroom_ratelimit']) t.ok(used.has(family), `the dashboard shows ${family}_*`)
  // an unknown metric is reported, a histogram suffix on a gauge too
  t.same(unknownMetrics('sum(rate(headroom_cache_hitz_total{instance=~"$instance"}[$__rate_interval]))', exported, also), ['headroom_cache_hitz_total'])
  t.same(unknownMetrics('headroom_pool_replica_lag_seconds_bucket', exported, also), ['headroom_pool_replica_lag_seconds_bucket'])
})

t.test('every panel uses the provisioned Prometheus datasource', async (t) => {
  const d = await dashboard()
  const ds = parse(await readFile(join(DEPLOY_DIR, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: Array<{ uid: string, type: string, url: string }> }
  t.same(ds.datasources.map((s) => [s.uid, s.type, s.url]), [['prometheus', 'prometheus', 'http://prometheus:9090']])
  for (const p of d.panels.filter((p) => p.type !== 'row')) t.equal(p.datasource?.uid, 'prometheus', `panel ${p.id} "${p.title}"`)
  const ids = d.panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
})

t.test('compose provisions Grafana with the datasource and the dashboard, and Prometheus with the rules', async (t) => {
  const compose = loadCompose()
  const grafana = compose.services.grafana as { volumes: string[], secrets: string[], environment: Record<string, string> }
  t.ok(grafana, 'a grafana service')
  t.ok(grafana.volumes.includes('./grafana/provisioning:/etc/grafana/provisioning:ro'), 'provisioning mounted')
  t.ok(grafana.volumes.includes('./grafana/finance-api.json:/var/lib/grafana/dashboards/finance-api.json:ro'), 'dashboard mounted')
  const provider = parse(await readFile(join(DEPLOY_DIR, 'grafana/provisioning/dashboards/finance-api.yml'), 'utf8')) as { providers: Array<{ options: { path: string } }> }
  t.equal(provider.providers[0]!.options.path, '/var/lib/grafana/dashboards', 'the provider reads the mounted directory')
  t.equal(grafana.environment.GF_SECURITY_ADMIN_PASSWORD__FILE, '/run/secrets/grafana_admin_password')
  t.ok(grafana.secrets.includes('grafana_admin_password'))
  const prometheus = compose.services.prometheus as { volumes: string[] }
  t.ok(prometheus.volumes.includes('./prometheus/rules:/etc/prometheus/rules:ro'), 'rules mounted')
  const config = parse(await readFile(join(DEPLOY_DIR, 'prometheus/prometheus.yml'), 'utf8')) as { rule_files: string[] }
  t.same(config.rule_files, ['/etc/prometheus/rules/*.rules.yml'], 'prometheus.yml loads the mounted rules')
})
