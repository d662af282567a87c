import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ScenarioResult } from './types.js'

function fmt (value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '-'
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |'
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n')
}

/** The human report of one scenario: a markdown table plus its checks. */
export function renderResult (r: ScenarioResult): string {
  const out: string[] = [`### ${r.scenario}${r.quick ? ' (quick)' : ''}`, r.description, '']
  if (r.variants) {
    const unit = r.kind === 'ops' ? 'ops/s' : 'req/s'
    out.push(table(
      ['variant', unit, 'p50 ms', 'p99 ms', `ratio vs ${r.baseline}`, 'errors', 'non-2xx'],
      r.variants.map((v) => [
        v.name + (v.name === r.baseline ? ' (baseline)' : ''),
        fmt(v.rps), fmt(v.p50, 1), fmt(v.p99, 1), fmt(v.ratio, 2), fmt(v.errors), fmt(v.non2xx)
      ])
    ))
    if (r.timing) {
      const slices = r.timing.slices ?? 1
      const how = r.kind !== 'http'
        ? `${r.timing.rounds} alternating rounds of ${r.timing.duration}s per variant`
        : `${r.timing.rounds} rounds, each with every variant in a fresh server process, warmed up ${r.timing.warmup}s, then measured ${r.timing.duration}s` +
          (slices > 1 ? ` in ${slices} interleaved slices` : '')
      out.push('', `${how}; ratio = median of per-round ratios.`)
    }
  }
  if (r.rows && r.rows.length > 0) {
    const header = Object.keys(r.rows[0]!)
    out.push(table(header, r.rows.map((row) => header.map((h) => {
      const v = row[h]
      return typeof v === 'number' ? fmt(v, Number.isInteger(v) ? 0 : 3) : String(v ?? '')
    }))))
  }
  for (const note of r.notes ?? []) out.push('', note)
  if (r.checks.length > 0) {
    out.push('')
    for (const c of r.checks) out.push(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`)
  }
  return out.join('\n') + '\n'
}

/** Writes `<dir>/<scenario>.json` for each result and `<dir>/summary.json` for the run. */
export function writeResults (dir: string, results: ScenarioResult[]): string[] {
  mkdirSync(dir, { recursive: true })
  const files = results.map((r) => {
    const file = join(dir, `${r.scenario.replace(/[^a-zA-Z0-9_.-]+/g, '-')}.json`)
    writeFileSync(file, JSON.stringify(r, null, 2) + '\n')
    return file
  })
  const summary = join(dir, 'summary.json')
  writeFileSync(summary, JSON.stringify({ finishedAt: new Date().toISOString(), results }, null, 2) + '\n')
  return [...files, summary]
}
