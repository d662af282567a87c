/**
 * What the rules and the dashboard may name: the metrics the headroom
 * packages export, read from their metrics.ts sources, and the metric names a
 * PromQL expression refers to. Parsing itself is promtool's job (the tests run
 * `promtool check rules`); this only finds the names.
 */
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from './deploy-files.js'

export interface Exported {
  /** every exported metric family name */
  names: Set<string>
  /** the histograms among them: `_bucket`, `_sum` and `_count` series exist too */
  histograms: Set<string>
}

/** Metric names from the packages' metrics.ts: `name: '…'`, `readonly name = '…'`, and the histogram helpers' first argument. */
export function exportedMetrics (): Exported {
  const names = new Set<string>()
  const histograms = new Set<string>()
  const packages = join(REPO_ROOT, 'packages')
  for (const pkg of readdirSync(packages)) {
    let text: string
    try { text = readFileSync(join(packages, pkg, 'src/metrics.ts'), 'utf8') } catch { continue }
    for (const m of text.matchAll(/(?:name: |name = |metric\(registry, |histogram\(|counter\(|gauge\()'([a-z_:][a-z0-9_:]*)'/g)) names.add(m[1]!)
    // any other way of declaring one (ratelimit: tallied('…', …)): a metrics file names no other headroom_ string
    for (const m of text.matchAll(/'(headroom_[a-z0-9_]+)'/g)) names.add(m[1]!)
    // pool: histogram('…'); cache: new Histogram({ name: '…' })
    for (const m of text.matchAll(/histogram\('([a-z0-9_]+)'/g)) histograms.add(m[1]!)
    for (const m of text.matchAll(/new Histogram\(\{\s*name: '([a-z0-9_]+)'/g)) histograms.add(m[1]!)
    // health: its request-duration histogram is core's FastHistogram
    for (const m of text.matchAll(/FastHistogram\.in\(\s*registry,\s*'([a-z0-9_]+)'/g)) { names.add(m[1]!); histograms.add(m[1]!) }
  }
  return { names, histograms }
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan'])

/** The metric names an expression selects (functions, aggregations, label names and durations are not names). */
export function metricNames (expr: string): string[] {
  let s = expr.replace(/#.*$/gm, ' ')
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
  s = s.replace(/\{[^}]*\}/g, ' ')
  s = s.replace(/\[[^\]]*\]/g, ' ')
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const names: string[] = []
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = m.index > 0 ? s[m.index - 1]! : ' '
    if (/[0-9.$]/.test(before)) continue // 1e3, 5m, $variable
    if (/^\s*\(/.test(s.slice(m.index + m[0].length))) continue // a function or an aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue
    names.push(m[0])
  }
  return names
}

/** The names of `expr` that are neither exported (histogram suffixes allowed), nor in `also` (recording rules, Prometheus's `up`). */
export function unknownMetrics (expr: string, exported: Exported, also: Set<string>): string[] {
  return metricNames(expr).filter((name) => {
    if (exported.names.has(name) || also.has(name)) return false
    const base = /^(.+)_(?:bucket|sum|count)$/.exec(name)?.[1]
    return !(base !== undefined && exported.histograms.has(base))
  })
}

export interface Result { code: number, stdout: string, stderr: string }

/** Runs a tool to completion; a missing tool is a failure (ENOENT), never a skip. */
export function run (file: string, args: string[], cwd: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: 180_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${file} could not run (${err.code ?? err.message}): install it (.ci/needs lists the Debian package)`))
        return
      }
      resolve({ code: err ? err.code as unknown as number : 0, stdout, stderr })
    })
  })
}
