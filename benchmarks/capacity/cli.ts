/**
 * `pnpm capacity`: measures (run.ts), models (analysis.ts), writes
 * CAPACITY.md and its charts at the repository root (docs/capacity/), and
 * checks the report (check.ts). `--quick` (CI) runs a reduced version into
 * a temporary directory, never over the committed report; `--out <dir>`
 * writes elsewhere. Exits 1 when a consistency check fails.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { analyse } from './analysis.js'
import { renderCharts, CHARTS } from './charts.js'
import { checkAnalysis, checkReport } from './check.js'
import type { Prices } from './cost.js'
import { pin, pinned } from './process.js'
import { renderReport, type Meta } from './report.js'
import { FULL, measureAll, QUICK } from './run.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const outIdx = args.indexOf('--out')
const outDir = outIdx >= 0 ? args[outIdx + 1]! : quick ? mkdtempSync(join(tmpdir(), 'capacity-quick-')) : ROOT
const chartDir = join(outDir, 'docs', 'capacity')

function commit (): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT }).toString().trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT }).toString().trim() !== ''
    return dirty ? `${sha} (with uncommitted changes)` : sha
  } catch {
    return 'unknown'
  }
}

async function main (): Promise<number> {
  pin(process.pid, 0)
  const started = Date.now()
  const loadBefore = loadavg()
  const log = (s: string) => console.log(s)
  log(`capacity${quick ? ' --quick' : ''}: writing to ${outDir}`)
  const data = await measureAll(quick ? QUICK : FULL, log)
  const prices = JSON.parse(readFileSync(new URL('./prices.json', import.meta.url), 'utf8')) as Prices
  const analysis = analyse(data, prices)
  const meta: Meta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    loadBefore,
    loadAfter: loadavg(),
    node: process.version,
    commit: commit(),
    durationS: (Date.now() - started) / 1000,
    command: quick ? 'pnpm capacity --quick' : 'pnpm capacity',
    pinned,
    chartDir: relative(outDir, chartDir) || '.'
  }
  const checks = checkAnalysis(analysis, data, quick)
  const draft = renderReport(data, analysis, prices, meta, checks)
  const all = [...checks, ...checkReport(draft)]
  const markdown = renderReport(data, analysis, prices, meta, all)
  mkdirSync(chartDir, { recursive: true })
  const charts = renderCharts(data, analysis)
  for (const [k, file] of Object.entries(CHARTS)) writeFileSync(join(chartDir, file), charts[k as keyof typeof CHARTS])
  writeFileSync(join(outDir, 'CAPACITY.md'), markdown)
  writeFileSync(join(outDir, 'docs', 'capacity', 'run.json'), JSON.stringify({ meta, data }, null, 1) + '\n')
  for (const c of all) log(`${c.pass ? 'pass' : c.advisory === true ? 'miss (reported)' : 'FAIL'}: ${c.name} (${c.detail})`)
  const failed = all.filter((c) => !c.pass && c.advisory !== true).length
  log(`capacity: ${failed === 0 ? 'pass' : 'fail'} (${all.length - failed} of ${all.length} checks) in ${((Date.now() - started) / 1000).toFixed(0)} s; report ${join(outDir, 'CAPACITY.md')}`)
  return failed === 0 ? 0 : 1
}

main().then((code) => process.exit(code), (err) => {
  console.error(err)
  console.log('capacity: fail (the run did not complete)')
  process.exit(1)
})
