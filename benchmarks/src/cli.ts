/**
 * pnpm bench [--quick] [--strict|--no-strict] [--no-record] [--list] [filter ...]
 *
 * Runs every scenario (or those whose name or file contains a filter), prints
 * a table per scenario, writes JSON under benchmarks/results/ and adds the
 * run to benchmarks/RESULTS.md (unless --no-record). A scenario
 * that crashes always fails the run; a failed ratio check fails it in full
 * mode (or with --strict). In --quick mode the runs are too short for the
 * checks to be more than indicative, so they are reported, not enforced.
 */
import { loadavg } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { pinHarness } from './child.js'
import { discoverScenarioFiles } from './discover.js'
import { gitState, recordRun, renderRun } from './record.js'
import { renderResult, writeResults } from './report.js'
import { runScenario } from './runner.js'
import type { Scenario, ScenarioResult } from './types.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const strict = args.includes('--strict') || (!quick && !args.includes('--no-strict'))
const record = !args.includes('--no-record')
const loadStart = loadavg()
const filters = args.filter((a) => !a.startsWith('--'))

const files = discoverScenarioFiles(root)
const scenarios: Array<{ file: string, scenario: Scenario }> = []
for (const file of files) {
  const mod = await import(pathToFileURL(file).href) as { default?: Scenario | Scenario[] }
  const found = Array.isArray(mod.default) ? mod.default : mod.default ? [mod.default] : []
  if (found.length === 0) throw new Error(`${relative(root, file)} has no default export of a scenario`)
  for (const scenario of found) scenarios.push({ file: relative(root, file), scenario })
}
const selected = scenarios.filter(({ file, scenario }) => filters.length === 0 || filters.some((f) => scenario.name.includes(f) || file.includes(f)))

if (args.includes('--list')) {
  for (const { file, scenario } of scenarios) console.log(`${scenario.name}\t${scenario.kind}\t${file}`)
  process.exit(0)
}
if (selected.length === 0) {
  console.error(`no scenario matches ${filters.join(', ')}`)
  process.exit(1)
}

pinHarness()
const results: ScenarioResult[] = []
let crashed = 0
for (const { file, scenario } of selected) {
  console.log(`\n> ${scenario.name} (${file})`)
  try {
    const result = await runScenario(scenario, { quick, log: (line) => console.log(line) })
    results.push(result)
    console.log('\n' + renderResult(result))
  } catch (err) {
    crashed++
    console.error(`scenario ${scenario.name} failed: ${(err as Error).stack ?? String(err)}`)
  }
}

const written = writeResults(join(root, 'benchmarks', 'results'), results)
const failedChecks = results.flatMap((r) => r.checks.filter((c) => !c.pass).map((c) => `${r.scenario}: ${c.name} (${c.detail})`))
if (record && results.length > 0) {
  const file = join(root, 'benchmarks', 'RESULTS.md')
  const files = Object.fromEntries(selected.map(({ file, scenario }) => [scenario.name, file]))
  recordRun(file, renderRun({ finishedAt: new Date().toISOString(), ...gitState(root), quick, loadStart, loadEnd: loadavg(), files }, results))
  written.push(file)
}
console.log(`\nresults: ${written.map((f) => relative(root, f)).join(', ')}`)
console.log(`${results.length} scenario(s) ran, ${crashed} crashed, ${failedChecks.length} check(s) failed${strict ? '' : ' (checks not enforced in --quick)'}`)
for (const f of failedChecks) console.log(`  FAIL ${f}`)
process.exit(crashed > 0 || (strict && failedChecks.length > 0) ? 1 : 0)
