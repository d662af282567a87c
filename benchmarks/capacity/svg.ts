/**
 * The report's charts as plain SVG (no library): lines on linear or log
 * axes, with optional low–high ranges and a horizontal limit line; grouped
 * bars. Readable on GitHub.
 */

export interface Series { label: string, color: string, points: Array<{ x: number, y: number }>, dashed?: boolean }
export interface Range { label: string, color: string, x: number, low: number, high: number }

export interface LineChart {
  title: string
  xLabel: string
  yLabel: string
  series: Series[]
  ranges?: Range[]
  logX?: boolean
  logY?: boolean
  limit?: { y: number, label: string }
}

const W = 760
const H = 380
const PAD = { left: 70, right: 180, top: 36, bottom: 50 }
const PW = W - PAD.left - PAD.right
const PH = H - PAD.top - PAD.bottom

export function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function fmt (v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`
  return `${+v.toFixed(v < 10 ? 1 : 0)}`
}

function niceMax (v: number): number {
  if (!Number.isFinite(v) || v <= 0) return 1
  const mag = 10 ** Math.floor(Math.log10(v))
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((m) => m >= v)!
}

function axis (values: number[], log: boolean, floor = 0) {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0))
  if (log) {
    const lo = 10 ** Math.floor(Math.log10(Math.min(...finite, 1e9)))
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...finite, lo * 10)))
    const ticks: number[] = []
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t)
    return { map: (v: number) => (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)), ticks }
  }
  const hi = niceMax(Math.max(...finite, floor))
  return { map: (v: number) => v / hi, ticks: [0, 1, 2, 3, 4].map((i) => (hi / 4) * i) }
}

function frame (title: string, xLabel: string, yLabel: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${PAD.left}" y="20" font-size="13" font-weight="600">${esc(title)}</text>`,
    `<text x="${PAD.left + PW / 2}" y="${H - 10}" text-anchor="middle" fill="#4a5568">${esc(xLabel)}</text>`,
    `<text x="16" y="${PAD.top + PH / 2}" transform="rotate(-90 16 ${PAD.top + PH / 2})" text-anchor="middle" fill="#4a5568">${esc(yLabel)}</text>`
  ]
}

function legend (out: string[], items: Array<{ label: string, color: string, dashed?: boolean }>): void {
  items.forEach((it, k) => {
    const y = PAD.top + 6 + k * 18
    out.push(`<line x1="${W - PAD.right + 12}" x2="${W - PAD.right + 30}" y1="${y}" y2="${y}" stroke="${it.color}" stroke-width="3"${it.dashed ? ' stroke-dasharray="5 3"' : ''}/>`)
    out.push(`<text x="${W - PAD.right + 36}" y="${y + 4}">${esc(it.label)}</text>`)
  })
}

export function lineChart (c: LineChart): string {
  const xs = c.series.flatMap((s) => s.points.map((p) => p.x)).concat((c.ranges ?? []).map((r) => r.x))
  const ys = c.series.flatMap((s) => s.points.map((p) => p.y)).concat((c.ranges ?? []).flatMap((r) => [r.low, r.high]))
  const ax = axis(xs, c.logX ?? false)
  const ay = axis(ys, c.logY ?? false, c.limit?.y ?? 0)
  const X = (v: number) => PAD.left + ax.map(v) * PW
  const Y = (v: number) => PAD.top + PH - Math.min(1.02, ay.map(v)) * PH
  const out = frame(c.title, c.xLabel, c.yLabel)
  for (const t of ay.ticks) {
    out.push(`<line x1="${PAD.left}" x2="${PAD.left + PW}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" stroke="#e2e8f0"/>`)
    out.push(`<text x="${PAD.left - 6}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end" fill="#4a5568">${fmt(t)}</text>`)
  }
  for (const t of ax.ticks) out.push(`<text x="${X(t).toFixed(1)}" y="${PAD.top + PH + 16}" text-anchor="middle" fill="#4a5568">${fmt(t)}</text>`)
  if (c.limit) {
    out.push(`<line x1="${PAD.left}" x2="${PAD.left + PW}" y1="${Y(c.limit.y).toFixed(1)}" y2="${Y(c.limit.y).toFixed(1)}" stroke="#718096" stroke-dasharray="2 3"/>`)
    out.push(`<text x="${PAD.left + PW - 4}" y="${(Y(c.limit.y) - 4).toFixed(1)}" text-anchor="end" fill="#4a5568">${esc(c.limit.label)}</text>`)
  }
  for (const r of c.ranges ?? []) {
    out.push(`<line x1="${X(r.x).toFixed(1)}" x2="${X(r.x).toFixed(1)}" y1="${Y(r.low).toFixed(1)}" y2="${Y(r.high).toFixed(1)}" stroke="${r.color}" stroke-width="10" stroke-opacity="0.5"/>`)
  }
  for (const s of c.series) {
    const pts = s.points.filter((p) => Number.isFinite(p.y)).map((p) => `${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`)
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`)
    for (const p of pts) out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2.5" fill="${s.color}"/>`)
  }
  legend(out, [...c.series, ...(c.ranges ?? []).filter((r, i, all) => all.findIndex((o) => o.label === r.label) === i)])
  out.push('</svg>')
  return out.join('\n') + '\n'
}

export interface BarGroup { label: string, bars: Array<{ value: number, low?: number }> }

/** Grouped bars; a bar with `low` is drawn as a low–high range (the seed's estimates). */
export function barChart (title: string, yLabel: string, series: Array<{ label: string, color: string }>, groups: BarGroup[]): string {
  const ay = axis(groups.flatMap((g) => g.bars.map((b) => b.value)), false)
  const Y = (v: number) => PAD.top + PH - ay.map(v) * PH
  const out = frame(title, '', yLabel)
  for (const t of ay.ticks) {
    out.push(`<line x1="${PAD.left}" x2="${PAD.left + PW}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" stroke="#e2e8f0"/>`)
    out.push(`<text x="${PAD.left - 6}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end" fill="#4a5568">${fmt(t)}</text>`)
  }
  const gw = PW / groups.length
  const bw = (gw * 0.7) / series.length
  groups.forEach((g, i) => {
    const x0 = PAD.left + i * gw + gw * 0.15
    g.bars.forEach((b, k) => {
      const color = series[k]!.color
      const bottom = b.low === undefined ? 0 : b.low
      out.push(`<rect x="${(x0 + k * bw).toFixed(1)}" y="${Y(b.value).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${Math.max(1, Y(bottom) - Y(b.value)).toFixed(1)}" fill="${color}"${b.low === undefined ? '' : ' fill-opacity="0.5"'}/>`)
    })
    out.push(`<text x="${(PAD.left + i * gw + gw / 2).toFixed(1)}" y="${PAD.top + PH + 16}" text-anchor="middle" fill="#4a5568">${esc(g.label)}</text>`)
  })
  legend(out, series)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
