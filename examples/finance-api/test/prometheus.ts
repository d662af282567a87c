/**
 * A real Prometheus server for a test: Debian's `prometheus` binary on a free
 * port, a generated config that scrapes the given targets every second and
 * evaluates the given rule files every second, its storage in a directory of
 * its own. Teardown (or the process's exit) kills it and removes the
 * directory, whatever the test did.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, guardExit, waitFor, type TestContext } from '@headroom/testing'
import { stringify } from 'yaml'

export interface PrometheusOptions {
  /** `host:port` of every instance to scrape, as job `finance-api` */
  targets: string[]
  /** absolute paths of the rule files to load */
  ruleFiles: string[]
}

export interface Alert { labels: Record<string, string>, state: 'pending' | 'firing', activeAt: string, value: string }
export interface Target { health: 'up' | 'down' | 'unknown', scrapeUrl: string, lastError: string, labels: Record<string, string> }
export interface Sample { metric: Record<string, string>, value: [number, string] }

export interface Prometheus {
  url: string
  query (expr: string): Promise<Sample[]>
  alerts (): Promise<Alert[]>
  targets (): Promise<Target[]>
  /** the end of its log, for failure messages */
  log (): string
}

/** Whether `prometheus` runs here; CI must have it (.ci/needs installs it), elsewhere the caller may skip. */
export function prometheusInstalled (): boolean {
  return spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).error === undefined
}

export async function startPrometheus (t: TestContext, options: PrometheusOptions): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'headroom-test-prometheus-'))
  const port = await freePort()
  const config = {
    // a 1 s scrape bounds the timeout to 1 s; a scrape that fails marks every
    // series stale and would restart an alert's `for:`, which is why the test
    // asserts the target's health along with the alerts
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: options.ruleFiles,
    scrape_configs: [{ job_name: 'finance-api', static_configs: [{ targets: options.targets, labels: { service: 'finance-api' } }] }]
  }
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config))
  const logFile = join(dir, 'prometheus.log')
  const out = openSync(logFile, 'a')
  let child: ChildProcess | null = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=info'
  ], { stdio: ['ignore', out, out] })
  closeSync(out)
  const proc = child
  proc.once('exit', () => { child = null })
  const log = () => { try { return readFileSync(logFile, 'utf8').slice(-4000) } catch { return '' } }

  const unguard = guardExit(() => {
    child?.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  t.teardown(async () => {
    unguard()
    if (child) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
      child.kill('SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })

  const url = `http://127.0.0.1:${port}`
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path, { signal: AbortSignal.timeout(10_000) })
    const body = await res.json() as { status: string, data: T, error?: string }
    if (body.status !== 'success') throw new Error(`${path}: ${res.status} ${body.error ?? ''}`)
    return body.data
  }
  await waitFor('prometheus to be ready', async () => {
    if (child === null) throw new Error(`prometheus exited at start:\n${log()}`)
    return (await fetch(`${url}/-/ready`)).ok
  }, 60_000, 200)

  return {
    url,
    query: async (expr) => (await api<{ result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts,
    targets: async () => (await api<{ activeTargets: Target[] }>('/api/v1/targets?state=active')).activeTargets,
    log
  }
}
