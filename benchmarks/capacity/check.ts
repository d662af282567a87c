/**
 * The report's consistency checks: every section present, every claim with
 * a verdict, totals that add up, and a model whose every row carries its
 * load (processes × capacity ≥ peak, database and Redis cores ≥ need). `pnpm
 * capacity --quick` (CI) exits non-zero when one fails.
 */
import type { Analysis } from './analysis.js'
import { COST_PARTS } from './cost.js'
import { TARGET } from './model.js'
import { P99_LIMIT_MS, type RunData } from './run.js'
import { SECTIONS } from './report.js'

/** `advisory`: reported, not counted (a quick run's figures on a CI machine are not the capacity) */
export interface CheckResult { name: string, pass: boolean, detail: string, advisory?: boolean }

const VERDICTS = new Set(['true', 'false', 'true-with-caveat'])

/**
 * Checks on the analysis alone (the markdown is checked by checkReport).
 * `quick`: the seed's-peak goal is reported, not enforced.
 */
export function checkAnalysis (a: Analysis, d: RunData, quick = false): CheckResult[] {
  const out: CheckResult[] = []
  const add = (name: string, pass: boolean, detail: string) => out.push({ name, pass, detail })
  const p = d.peak
  out.push({
    name: `the seed's peak: ${d.settings.peakRate.toLocaleString('en-US')} req/s with ${d.settings.virtualUsers.toLocaleString('en-US')} logged-in users over ${d.seededUsers.toLocaleString('en-US')} seeded holds p99 < ${P99_LIMIT_MS} ms with zero 5xx`,
    pass: a.peakHolds,
    detail: `p99 ${p.p99.toFixed(1)} ms, ${p.e5xx} 5xx, ${p.errors} transport errors over ${p.sent} requests in ${p.durationS} s${quick ? '; reported, not enforced in a quick run' : ''}`,
    ...(quick ? { advisory: true } : {})
  })
  add('one app process has a measured capacity (a step met the criterion)', a.capacityMet && a.capacityRps > 0, `${a.capacityRps} req/s`)
  add('the ladder went past saturation (its last two steps missed the criterion)', a.saturated, a.saturated ? 'yes' : 'no: raise maxSteps')
  const badClaims = a.claims.filter((c) => !VERDICTS.has(c.verdict) || c.figures.trim() === '')
  add('every seed claim has a verdict and figures', a.claims.length >= 4 && badClaims.length === 0, `${a.claims.length} claims, ${badClaims.length} without`)
  const perReq = [...Object.values(a.on), ...Object.values(a.off)]
  add('per-request costs are finite and not negative', perReq.every((v) => Number.isFinite(v) && v >= 0), perReq.map((v) => v.toFixed(3)).join(' '))
  const short = a.rows.filter((r) => r.sizing.appProcesses * a.capacityRps < r.sizing.peakRps)
  add('every row: app processes × capacity ≥ peak requests/s', short.length === 0, short.map((r) => `${r.model} ${r.sizing.users}`).join(', ') || `${a.rows.length} rows`)
  const pgShort = a.rows.filter((r) => r.sizing.pgPrimaryVcpu * (1 + r.sizing.pgReplicas) < r.sizing.pgCores)
  add('every row: PostgreSQL vCPUs (primary + replicas) ≥ cores needed', pgShort.length === 0, pgShort.map((r) => `${r.model} ${r.sizing.users}`).join(', ') || 'all rows')
  const redisShort = a.rows.filter((r) => r.sizing.redisShards * TARGET.redisUtil * 1000 < r.sizing.peakApiRps * a.measured.redisCpuMsPerApiReq)
  add('every row: Redis shards carry the Redis CPU needed', redisShort.length === 0, redisShort.map((r) => `${r.model} ${r.sizing.users}`).join(', ') || 'all rows')
  const badTotals = a.rows.filter((r) => Math.abs(COST_PARTS.reduce((s, p) => s + r.cost[p], 0) - r.cost.total) > 0.01 || COST_PARTS.some((p) => !(r.cost[p] >= 0)))
  add('every cost row: parts are non-negative and add up to the total', badTotals.length === 0, badTotals.map((r) => `${r.model} ${r.sizing.users}`).join(', ') || `${a.rows.length} rows`)
  const models = [...new Set(a.rows.map((r) => r.model))]
  const notMonotone = models.filter((m) => {
    const rows = a.rows.filter((r) => r.model === m).sort((x, y) => x.sizing.users - y.sizing.users)
    return rows.some((r, i) => i > 0 && r.cost.total < rows[i - 1]!.cost.total)
  })
  add('cost grows with users in every traffic model', notMonotone.length === 0, notMonotone.join(', ') || models.join(', '))
  add('every seed headline figure is compared', a.headlines.length >= 8 && a.headlines.every((h) => typeof h.contradicted === 'boolean' && h.measured !== ''), `${a.headlines.length} figures`)
  return out
}

export function checkReport (markdown: string): CheckResult[] {
  const missing = SECTIONS.filter((s) => !markdown.includes(`## ${s}\n`))
  const bad = ['NaN', 'undefined', 'Infinity'].filter((w) => markdown.includes(w))
  return [
    { name: 'every section is present', pass: missing.length === 0, detail: missing.length === 0 ? `${SECTIONS.length} sections` : `missing: ${missing.join(', ')}` },
    { name: 'no NaN, undefined or Infinity in the report', pass: bad.length === 0, detail: bad.join(', ') || 'none' }
  ]
}
