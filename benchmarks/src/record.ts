/**
 * benchmarks/RESULTS.md: the record of benchmark runs. Every run of the
 * bench CLI adds one section (the date, the commit, the machine's load, and
 * each scenario's table as printed) at the top of the record, under the
 * marker; nothing already in the file is changed, so the record only grows.
 * The package READMEs keep the current figures and link here for the rest.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { renderResult } from './report.js'
import type { ScenarioResult } from './types.js'

/** Every run is added below this line, newest first. */
export const RUNS_MARKER = '<!-- runs: the bench CLI adds each run below this line, newest first -->'

export interface RunInfo {
  /** when the run finished (ISO 8601) */
  finishedAt: string
  /** the commit the run measured, or null outside a git checkout */
  commit: string | null
  /** whether the working tree differed from that commit */
  dirty: boolean
  quick: boolean
  /** os.loadavg() (1, 5, 15 min) at the start and at the end of the run */
  loadStart: number[]
  loadEnd: number[]
  /** `<scenario>` → the file that defines it, relative to the repository */
  files: Record<string, string>
}

/** The commit checked out at `root` and whether the tree has uncommitted changes; null outside git. */
export function gitState (root: string): { commit: string | null, dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    // the results themselves are ignored by git, and RESULTS.md changes with every run
    const status = execFileSync('git', ['status', '--porcelain', '--', '.', ':!benchmarks/RESULTS.md'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    return { commit, dirty: status.trim() !== '' }
  } catch {
    return { commit: null, dirty: false }
  }
}

const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(' / ')

/** One run's section of the record: a heading with date, commit and mode, then every scenario's table. */
export function renderRun (info: RunInfo, results: ScenarioResult[]): string {
  const when = info.finishedAt.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC')
  const commit = info.commit === null ? 'no commit' : `commit ${info.commit.slice(0, 10)}${info.dirty ? ' + uncommitted changes' : ''}`
  const machine = results[0]?.machine
  const out = [
    `## ${when} · ${commit} · ${info.quick ? 'quick' : 'full'} run`,
    '',
    `${results.length} scenario(s): ${results.map((r) => `\`${r.scenario}\``).join(', ')}.` +
      (machine ? ` ${machine.cpus} cores, Node ${machine.node}, ${machine.platform};` : '') +
      ` load average ${load(info.loadStart)} at the start, ${load(info.loadEnd)} at the end (1 / 5 / 15 min).`,
    ''
  ]
  for (const r of results) {
    const file = info.files[r.scenario]
    // renderResult's heading (###) sits one level below the run's
    out.push(renderResult(r).trimEnd())
    if (file) out.push('', `Defined in \`${file}\`; started ${r.startedAt}.`)
    out.push('')
  }
  return out.join('\n')
}

const HEADER = `# Benchmark results

The record of benchmark runs on this project's machines, newest first. Every
run of \`pnpm bench\` / \`pnpm bench:quick\` (benchmarks/src/cli.ts) adds a
section here when it ends: the date, the commit measured (and whether the
tree had uncommitted changes), the load average, and each scenario's table
as the run printed it (the same figures as \`benchmarks/results/*.json\`,
which are not kept in git). Pass \`--no-record\` to leave this file alone.

Compare ratios within one run, never absolute figures across runs: see
benchmarks/README.md. The package READMEs keep the current table of each
benchmark and link here for the history.

${RUNS_MARKER}
`

/**
 * Adds `section` to the record at `file`, under the marker (above every
 * earlier run), creating the record if there is none. Everything else in
 * the file stays as it was.
 */
export function recordRun (file: string, section: string): void {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : HEADER
  const at = current.indexOf(RUNS_MARKER)
  const [before, after] = at === -1
    // a record without the marker (edited by hand): the runs go on top of it, the marker with them
    ? [HEADER, '\n' + current]
    : [current.slice(0, at + RUNS_MARKER.length) + '\n', current.slice(at + RUNS_MARKER.length)]
  writeFileSync(file, `${before}\n${section.trimEnd()}\n${after.replace(/^\n*/, '\n')}`)
}
