/** One second of the measured run. */
export interface Second { t: number, rps: number, p50: number, p95: number, p99: number }

/** The response times seen between two of autocannon's ticks, and how long that was. */
export interface TickWindow { ms: number, times: number[] }

/**
 * @default 900: a window shorter than this is not a second. autocannon ticks
 * every second, and once more when the run stops, whenever that falls: that
 * last window holds a fraction of a second's responses and would be drawn as
 * a drop of the rate at the end of every run.
 */
export const MIN_SECOND_MS = 900

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** The whole seconds of a run, numbered from 1; a partial window (the run's end) is left out. */
export function completeSeconds (windows: readonly TickWindow[]): Second[] {
  return windows.filter((w) => w.ms >= MIN_SECOND_MS).map((w, i) => {
    const sorted = [...w.times].sort((a, b) => a - b)
    return { t: i + 1, rps: Math.round(w.times.length * 1000 / w.ms), p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) }
  })
}

const W = 760
const PANEL = 170
const PAD = { left: 56, right: 110, top: 28, gap: 46 }
const COLORS = { rps: '#2b6cb0', p50: '#2f855a', p95: '#d69e2e', p99: '#c53030' }

function niceMax (v: number): number {
  if (!Number.isFinite(v) || v <= 0) return 1
  const mag = 10 ** Math.floor(Math.log10(v))
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((m) => m >= v)!
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;')
}

/**
 * Two panels, second by second: requests per second, and p50 / p95 / p99
 * latency. Plain SVG, no library, readable on GitHub.
 */
export function renderSvg (seconds: Second[]): string {
  const H = PAD.top + PANEL * 2 + PAD.gap + 40
  const plotW = W - PAD.left - PAD.right
  const n = Math.max(1, seconds.length)
  const x = (i: number) => PAD.left + (n === 1 ? plotW / 2 : (i / (n - 1)) * plotW)
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`
  ]
  const panel = (top: number, title: string, unit: string, series: Array<{ key: keyof Second, label: string, color: string }>) => {
    const max = niceMax(Math.max(...seconds.flatMap((s) => series.map((k) => Number(s[k.key]) || 0))))
    const y = (v: number) => top + PANEL - (v / max) * PANEL
    out.push(`<text x="${PAD.left}" y="${top - 10}" font-size="13" font-weight="600">${esc(title)}</text>`)
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i
      out.push(`<line x1="${PAD.left}" x2="${PAD.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#e2e8f0"/>`)
      out.push(`<text x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#4a5568">${Math.round(v).toLocaleString('en-US')}</text>`)
    }
    out.push(`<text x="14" y="${top + PANEL / 2}" transform="rotate(-90 14 ${top + PANEL / 2})" text-anchor="middle" fill="#4a5568">${esc(unit)}</text>`)
    series.forEach((sr, k) => {
      const pts = seconds.map((s, i) => `${x(i).toFixed(1)},${y(Number(s[sr.key]) || 0).toFixed(1)}`).join(' ')
      out.push(`<polyline points="${pts}" fill="none" stroke="${sr.color}" stroke-width="2"/>`)
      out.push(`<rect x="${W - PAD.right + 14}" y="${top + k * 18}" width="12" height="3" fill="${sr.color}"/>`)
      out.push(`<text x="${W - PAD.right + 32}" y="${top + k * 18 + 5}">${esc(sr.label)}</text>`)
    })
  }
  panel(PAD.top, 'Throughput', 'requests / s', [{ key: 'rps', label: 'req/s', color: COLORS.rps }])
  panel(PAD.top + PANEL + PAD.gap, 'Latency', 'ms', [
    { key: 'p50', label: 'p50', color: COLORS.p50 },
    { key: 'p95', label: 'p95', color: COLORS.p95 },
    { key: 'p99', label: 'p99', color: COLORS.p99 }
  ])
  const axisY = PAD.top + PANEL * 2 + PAD.gap + 18
  const every = n > 30 ? 10 : 5
  seconds.forEach((s, i) => {
    if (s.t % every === 0 || i === 0) out.push(`<text x="${x(i).toFixed(1)}" y="${axisY - 4}" text-anchor="middle" fill="#4a5568">${s.t}</text>`)
  })
  out.push(`<text x="${PAD.left + plotW / 2}" y="${axisY + 14}" text-anchor="middle" fill="#4a5568">seconds into the measured run</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
