/**
 * The Prometheus rules of deploy/prometheus: promtool accepts them, their unit
 * tests (tests/*.test.yml) pass and cover every alert firing and not firing,
 * every alert has a runbook section, and every metric they name is one the
 * packages export. Each check is shown to fail on a broken copy.
 */
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { DEPLOY_DIR } from './deploy-files.js'
import { exportedMetrics, run, unknownMetrics } from './promql.js'

const PROM_DIR = join(DEPLOY_DIR, 'prometheus')
const RULES = 'rules/finance-api.rules.yml'

interface Rule { record?: string, alert?: string, expr: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface AlertTest { eval_time: string, alertname: string, exp_alerts?: unknown[] }
interface UnitTests { rule_files: string[], tests: Array<{ name: string, alert_rule_test?: AlertTest[] }> }

async function rules (): Promise<Rule[]> {
  const doc = parse(await readFile(join(PROM_DIR, RULES), 'utf8')) as { groups: Array<{ rules: Rule[] }> }
  return doc.groups.flatMap((g) => g.rules)
}

async function scratch (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'finance-rules-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'rules'))
  await mkdir(join(dir, 'tests'))
  return dir
}

/** A copy of rules/ and tests/ in a temporary directory, the rules file edited by `edit`. */
async function brokenCopy (t: Test, edit: (text: string) => string): Promise<string> {
  const dir = await scratch(t)
  const text = await readFile(join(PROM_DIR, RULES), 'utf8')
  const edited = edit(text)
  t.not(edited, text, 'the edit changed the rules')
  await writeFile(join(dir, RULES), edited)
  for (const f of await readdir(join(PROM_DIR, 'tests'))) {
    await writeFile(join(dir, 'tests', f), await readFile(join(PROM_DIR, 'tests', f)))
  }
  return dir
}

async function testFiles (): Promise<string[]> {
  return (await readdir(join(PROM_DIR, 'tests'))).filter((f) => f.endsWith('.test.yml')).map((f) => `tests/${f}`)
}

t.test('promtool check rules accepts the rules file', async (t) => {
  const r = await run('promtool', ['check', 'rules', RULES], PROM_DIR)
  t.equal(r.code, 0, r.stdout + r.stderr)
  t.match(r.stdout, /SUCCESS: \d+ rules found/)
})

t.test('promtool check rules rejects a broken expression and a broken duration: the check can fail', async (t) => {
  const dir = await brokenCopy(t, (text) => text.replace('headroom_pool_replica_up == 0', 'headroom_pool_replica_up == (0'))
  const bad = await run('promtool', ['check', 'rules', RULES], dir)
  t.not(bad.code, 0)
  t.match(bad.stdout + bad.stderr, /FAILED/)
  const dir2 = await brokenCopy(t, (text) => text.replace('for: 30s', 'for: thirty'))
  t.not((await run('promtool', ['check', 'rules', RULES], dir2)).code, 0)
})

t.test('promtool test rules: the unit tests pass', async (t) => {
  const files = await testFiles()
  t.ok(files.length > 0, 'there are unit tests')
  const r = await run('promtool', ['test', 'rules', ...files], PROM_DIR)
  t.equal(r.code, 0, r.stdout + r.stderr)
  t.match(r.stdout + r.stderr, /SUCCESS/)
})

t.test('promtool test rules fails when an alert changes under its tests: the tests can fail', async (t) => {
  // the lag threshold raised from 1 s to 5 s: the 3 s lag of the test no longer fires
  const dir = await brokenCopy(t, (text) => text.replace('headroom_pool_replica_lag_seconds > 1', 'headroom_pool_replica_lag_seconds > 5'))
  const r = await run('promtool', ['test', 'rules', ...await testFiles()], dir)
  t.not(r.code, 0)
  t.match(r.stdout + r.stderr, /FAILED[\s\S]*FinanceApiReplicaLagging/)
  // an alert that fires too early (no `for:`) fails its not-yet-firing case
  const early = await brokenCopy(t, (text) => text.replace(/(headroom_session_fallback_active == 1\n\s+)for: 1m\n/, '$1'))
  const r2 = await run('promtool', ['test', 'rules', ...await testFiles()], early)
  t.not(r2.code, 0)
  t.match(r2.stdout + r2.stderr, /FinanceApiSessionFallbackActive/)
})

t.test('the unit tests cover every alert, firing and not firing, and load the rules file', async (t) => {
  const alerts = (await rules()).filter((r) => r.alert !== undefined).map((r) => r.alert!)
  t.ok(alerts.length >= 16, `${alerts.length} alerts`)
  const firing = new Set<string>()
  const silent = new Set<string>()
  for (const file of await testFiles()) {
    const doc = parse(await readFile(join(PROM_DIR, file), 'utf8')) as UnitTests
    t.same(doc.rule_files, [`../${RULES}`], `${file} tests the rules file`)
    for (const test of doc.tests) {
      for (const a of test.alert_rule_test ?? []) ((a.exp_alerts ?? []).length > 0 ? firing : silent).add(a.alertname)
    }
  }
  for (const a of alerts) {
    t.ok(firing.has(a), `${a}: a test where it fires`)
    t.ok(silent.has(a), `${a}: a test where it does not fire`)
  }
  for (const a of [...firing, ...silent]) t.ok(alerts.includes(a), `${a} (named by a test) is an alert of the rules`)
})

t.test('every alert has a severity, a summary, and a runbook_url to its section of RUNBOOK.md', async (t) => {
  const runbook = await readFile(join(PROM_DIR, 'RUNBOOK.md'), 'utf8')
  const sections = new Map<string, string>()
  for (const part of runbook.split(/^## /m).slice(1)) {
    const [heading, ...body] = part.split('\n')
    sections.set(heading!.trim(), body.join('\n'))
  }
  for (const r of (await rules()).filter((r) => r.alert !== undefined)) {
    const name = r.alert!
    t.match(r.labels?.severity, /^(page|ticket|warning)$/, `${name}: severity`)
    t.ok(r.annotations?.summary, `${name}: summary`)
    t.equal(r.annotations?.runbook_url, `examples/finance-api/deploy/prometheus/RUNBOOK.md#${name.toLowerCase()}`, `${name}: runbook_url`)
    const body = sections.get(name)
    t.ok(body, `${name}: a RUNBOOK.md section "## ${name}" (anchor #${name.toLowerCase()})`)
    t.match(body, /\*\*Means:\*\*[\s\S]*\*\*Check:\*\*[\s\S]*\*\*Do:\*\*/, `${name}: what it means, what to check, what to do`)
  }
  const alerts = new Set((await rules()).map((r) => r.alert))
  for (const heading of sections.keys()) t.ok(alerts.has(heading), `RUNBOOK.md section ${heading} is an alert`)
})

t.test('the rules name only metrics the packages export (or their own recordings, or up)', async (t) => {
  const exported = exportedMetrics()
  for (const name of ['headroom_health_http_request_duration_seconds', 'headroom_pool_acquire_wait_seconds', 'headroom_pool_connections', 'headroom_session_fallback_active',
    'headroom_ratelimit_fallback_active', 'headroom_cache_degraded', 'headroom_pool_replica_up', 'headroom_pool_replica_lag_seconds',
    'headroom_health_event_loop_delay_seconds', 'headroom_health_shed_requests_total', 'headroom_health_draining', 'headroom_pool_errors_total']) {
    t.ok(exported.names.has(name), `exported: ${name}`)
  }
  t.ok(exported.histograms.has('headroom_health_http_request_duration_seconds'), 'the request duration is a histogram')
  t.ok(exported.histograms.has('headroom_pool_acquire_wait_seconds'), 'the acquire wait is a histogram')
  t.notOk(exported.histograms.has('headroom_pool_connections'), 'a gauge is not a histogram')
  const all = await rules()
  const recorded = new Set([...all.filter((r) => r.record !== undefined).map((r) => r.record!), 'up'])
  for (const r of all) t.same(unknownMetrics(r.expr, exported, recorded), [], `${r.alert ?? r.record}: ${r.expr.trim().split('\n')[0]}`)
  // and the check sees a name no package exports
  t.same(unknownMetrics('rate(headroom_pool_conections_total[5m]) > 0 and headroom_pool_connections_bucket', exported, recorded),
    ['headroom_pool_conections_total', 'headroom_pool_connections_bucket'])
})
