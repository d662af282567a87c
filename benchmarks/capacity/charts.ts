/** The report's three charts, from the run and its analysis. */
import type { Analysis } from './analysis.js'
import { COST_PARTS, SEED_COSTS } from './cost.js'
import { P99_LIMIT_MS, type RunData } from './run.js'
import { barChart, lineChart } from './svg.js'

export const CHARTS = { latency: 'latency-vs-rate.svg', cost: 'cost-vs-users.svg', seed: 'seed-vs-model.svg' } as const

export function renderCharts (d: RunData, a: Analysis): Record<keyof typeof CHARTS, string> {
  const latency = lineChart({
    title: 'One app process (one core): latency vs offered rate, from each request\'s intended send time',
    xLabel: 'offered requests / s (open model)',
    yLabel: 'latency, ms (log)',
    logY: true,
    limit: { y: P99_LIMIT_MS, label: `p99 limit ${P99_LIMIT_MS} ms` },
    series: [
      { label: 'p50, cache on', color: '#2f855a', points: d.ladder.map((s) => ({ x: s.rate, y: s.p50 })) },
      { label: 'p99, cache on', color: '#c53030', points: d.ladder.map((s) => ({ x: s.rate, y: s.p99 })) },
      { label: 'p50, cache off', color: '#2f855a', dashed: true, points: d.compare.map((r) => ({ x: r.rate, y: r.off.p50 })) },
      { label: 'p99, cache off', color: '#c53030', dashed: true, points: d.compare.map((r) => ({ x: r.rate, y: r.off.p99 })) }
    ]
  })
  const colors = { seed: '#2b6cb0', heavy: '#d69e2e' } as Record<string, string>
  const cost = lineChart({
    title: 'Monthly cost vs daily users: the measured model and the seed\'s estimates',
    xLabel: 'daily users (log)',
    yLabel: 'USD / month (log)',
    logX: true,
    logY: true,
    series: [...new Set(a.rows.map((r) => r.model))].map((m) => ({
      label: `model: ${m} traffic`,
      color: colors[m] ?? '#4a5568',
      points: a.rows.filter((r) => r.model === m).map((r) => ({ x: r.sizing.users, y: r.cost.total }))
    })),
    ranges: SEED_COSTS.map((s) => ({ label: 'seed estimate (range)', color: '#c53030', x: s.users, low: s.total[0], high: s.total[1] }))
  })
  const seed100k = SEED_COSTS.find((s) => s.users === 100_000)!
  const model100k = a.rows.find((r) => r.model === 'seed' && r.sizing.users === 100_000)!
  const seedVsModel = barChart('100,000 daily users: the seed\'s estimate (range) beside the measured model, USD / month', 'USD / month',
    [{ label: 'seed (low–high)', color: '#c53030' }, { label: 'model, seed traffic', color: '#2b6cb0' }],
    [...COST_PARTS.map((p) => ({ label: p, bars: [{ low: seed100k.parts[p]?.[0] ?? 0, value: seed100k.parts[p]?.[1] ?? 0 }, { value: model100k.cost[p] }] })),
      { label: 'monitoring', bars: [{ low: seed100k.parts.monitoring![0], value: seed100k.parts.monitoring![1] }, { value: 0 }] }])
  return { latency, cost, seed: seedVsModel }
}
