import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { gitState, recordRun, renderRun, RUNS_MARKER, type RunInfo } from '../src/record.js'
import type { ScenarioResult } from '../src/types.js'

function result (scenario: string, ratio: number): ScenarioResult {
  const result: ScenarioResult = {
    scenario,
    kind: 'http',
    description: `${scenario}: what it measures`,
    baseline: 'bare',
    quick: true,
    timing: { rounds: 3, warmup: 1, duration: 1.5 },
    variants: [
      { name: 'bare', rps: 1000, p50: 1, p99: 5, ratio: 1, perRound: [1, 1, 1], errors: 0, non2xx: 0 },
      { name: 'plugin', rps: 1000 * ratio, p50: 1.2, p99: 6, ratio, perRound: [ratio, ratio, ratio], errors: 0, non2xx: 0 }
    ],
    checks: [{ name: 'plugin >= 0.8', pass: ratio >= 0.8, detail: `ratio ${ratio}` }],
    startedAt: '2026-12-02T13:00:00.000Z',
    machine: { cpus: 2, node: 'v20.20.2', platform: 'linux' }
  }
  return result
}

const info = (finishedAt: string, commit: string | null): RunInfo => ({
  finishedAt, commit, dirty: false, quick: true, loadStart: [3, 2.5, 2], loadEnd: [4, 3, 2], files: { 'demo-a': 'packages/demo/bench/a.bench.ts' }
})

function tempDir (t: { teardown (fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'headroom-record-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('a run section names the date, the commit, the mode, the load and every scenario\'s table', async (t) => {
  const section = renderRun(info('2026-12-02T13:45:12.345Z', '0123456789abcdef0123456789abcdef01234567'), [result('demo-a', 0.93), result('demo-b', 0.5)])
  t.match(section, /^## 2026-12-02 13:45 UTC · commit 0123456789 · quick run\n/)
  t.match(section, /load average 3\.0 \/ 2\.5 \/ 2\.0 at the start, 4\.0 \/ 3\.0 \/ 2\.0 at the end/)
  t.match(section, /2 cores, Node v20\.20\.2, linux/)
  t.match(section, /### demo-a \(quick\)\n/)
  t.match(section, /\| plugin +\| 930 +\| 1\.2 +\| 6\.0 +\| 0\.93 /)
  t.match(section, /Defined in `packages\/demo\/bench\/a\.bench\.ts`/)
  t.match(section, /### demo-b \(quick\)[\s\S]*FAIL {2}plugin >= 0\.8: ratio 0\.5/)
  t.match(renderRun({ ...info('2026-12-02T13:45:12.345Z', 'abc'), dirty: true }, [result('demo-a', 1)]), /commit abc \+ uncommitted changes/)
  t.match(renderRun(info('2026-12-02T13:45:12.345Z', null), [result('demo-a', 1)]), /· no commit ·/)
})

t.test('the record is created on the first run; later runs go on top; nothing earlier is changed', async (t) => {
  const file = join(tempDir(t), 'RESULTS.md')
  recordRun(file, renderRun(info('2026-12-01T10:00:00.000Z', 'aaaaaaaaaa'), [result('demo-a', 0.9)]))
  const first = readFileSync(file, 'utf8')
  t.match(first, /^# Benchmark results\n/)
  t.ok(first.indexOf(RUNS_MARKER) < first.indexOf('## 2026-12-01 10:00 UTC'), 'the run under the marker')

  // what was written by hand below the runs (the diaries moved from the READMEs) stays
  writeFileSync(file, first + '\n# Earlier records\n\nmeasured by hand on 2026-11-30: 0.95\n')
  recordRun(file, renderRun(info('2026-12-02T11:00:00.000Z', 'bbbbbbbbbb'), [result('demo-a', 0.8)]))
  const second = readFileSync(file, 'utf8')
  const newer = second.indexOf('## 2026-12-02 11:00 UTC · commit bbbbbbbbbb')
  const older = second.indexOf('## 2026-12-01 10:00 UTC · commit aaaaaaaaaa')
  t.ok(newer > second.indexOf(RUNS_MARKER) && newer < older, 'newest first')
  t.ok(second.includes(first.slice(first.indexOf('## 2026-12-01'))), 'the earlier run, unchanged')
  t.ok(second.endsWith('# Earlier records\n\nmeasured by hand on 2026-11-30: 0.95\n'), 'the hand-written history, unchanged')
  t.equal(second.split(RUNS_MARKER).length, 2, 'one marker')
})

t.test('a record without the marker keeps its text below the new run', async (t) => {
  const file = join(tempDir(t), 'RESULTS.md')
  writeFileSync(file, 'notes kept by hand\n')
  recordRun(file, renderRun(info('2026-12-02T11:00:00.000Z', 'cccccccccc'), [result('demo-a', 1)]))
  const text = readFileSync(file, 'utf8')
  t.ok(text.indexOf(RUNS_MARKER) < text.indexOf('## 2026-12-02') && text.indexOf('## 2026-12-02') < text.indexOf('notes kept by hand'))
})

t.test('gitState names the checked-out commit and whether the tree has changes', async (t) => {
  const dir = tempDir(t)
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim()
  git('init', '-q')
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'empty')
  t.same(gitState(dir), { commit: git('rev-parse', 'HEAD'), dirty: false })
  mkdirSync(join(dir, 'benchmarks'))
  writeFileSync(join(dir, 'benchmarks', 'RESULTS.md'), 'x')
  t.equal(gitState(dir).dirty, false, 'the record itself is not a change to what was measured')
  writeFileSync(join(dir, 'RESULTS.md'), 'x')
  t.equal(gitState(dir).dirty, true, 'an untracked file is a change')
  t.same(gitState(tmpdir() + '/no-such-dir-' + process.pid), { commit: null, dirty: false }, 'outside git: no commit')
})
