// Charts as SVG drawn here, no library: two shapes (bars, a line) are less
// code than a vendored library's configuration. Each chart is drawn at the
// width of its container (so text stays at its real size on a phone) and is
// one image to assistive technology, with the figures in its label.
const NS = 'http://www.w3.org/2000/svg'

function el (name, attrs = {}, text) {
  const node = document.createElementNS(NS, name)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  if (text !== undefined) node.textContent = text
  return node
}

function svg (width, height, label) {
  return el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, class: 'chart' })
}

function empty (container, text) {
  const p = document.createElement('p')
  p.className = 'muted chart-empty'
  p.textContent = text
  container.replaceChildren(p)
}

/** Horizontal bars: one per category, largest first, the amount at the end of each. */
export function drawCategories (container, byCategory, { money, period }) {
  if (byCategory.length === 0) return empty(container, `No spending in the ${period}.`)
  const width = Math.max(240, container.clientWidth)
  const row = 30
  const labelW = Math.min(140, Math.round(width * 0.32))
  const valueW = 84
  const barMax = width - labelW - valueW - 8
  const max = Math.max(...byCategory.map((c) => c.spentCents))
  const label = `Spending by category, ${period}: ` + byCategory.map((c) => `${c.category} ${money(c.spentCents)}`).join(', ')
  const chart = svg(width, byCategory.length * row + 4, label)
  byCategory.forEach((c, i) => {
    const y = i * row + 4
    const w = Math.max(2, Math.round((c.spentCents / max) * barMax))
    const g = el('g', { class: 'bar' })
    g.append(el('title', {}, `${c.category}: ${money(c.spentCents)}`))
    g.append(el('text', { x: labelW - 8, y: y + 17, 'text-anchor': 'end', class: 'label' }, truncate(c.category, labelW)))
    g.append(el('rect', { x: labelW, y: y + 3, width: w, height: row - 10, rx: 3 }))
    g.append(el('text', { x: labelW + w + 6, y: y + 17, class: 'value' }, money(c.spentCents)))
    chart.append(g)
  })
  container.replaceChildren(chart)
}

/** about 7 px a character at the chart's font size: enough to keep a long category inside its column */
function truncate (text, px) {
  const max = Math.floor(px / 7.5)
  return text.length > max ? text.slice(0, max - 1) + '…' : text
}

/** The balance at the end of each day: a line over a shaded area, the lowest and highest values marked on the axis. */
export function drawBalance (container, balance, { money, period, date }) {
  if (balance.length === 0) return empty(container, `No balance to show for the ${period}.`)
  const width = Math.max(240, container.clientWidth)
  const height = 190
  const left = 78
  const right = 10
  const top = 12
  const bottom = 28
  const values = balance.map((p) => p.balanceCents)
  const lo = Math.min(0, ...values)
  let hi = Math.max(0, ...values)
  if (hi === lo) hi = lo + 100
  const x = (i) => left + (balance.length === 1 ? 0 : (i / (balance.length - 1)) * (width - left - right))
  const y = (v) => top + (1 - (v - lo) / (hi - lo)) * (height - top - bottom)
  const first = balance[0]
  const last = balance.at(-1)
  const label = `Balance over the ${period}: ${money(first.balanceCents)} on ${date(first.date)}, ` +
    `${money(last.balanceCents)} on ${date(last.date)}; lowest ${money(Math.min(...values))}, highest ${money(Math.max(...values))}`
  const chart = svg(width, height, label)
  for (const v of new Set([lo, 0, hi])) {
    chart.append(el('line', { x1: left, x2: width - right, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'grid' }))
    chart.append(el('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'label' }, money(v)))
  }
  const points = balance.map((p, i) => `${x(i).toFixed(1)},${y(p.balanceCents).toFixed(1)}`)
  const base = y(Math.max(lo, Math.min(0, hi)))
  chart.append(el('polygon', { points: `${x(0)},${base} ${points.join(' ')} ${x(balance.length - 1)},${base}`, class: 'area' }))
  chart.append(el('polyline', { points: points.join(' '), class: 'line' }))
  const ticks = balance.length > 2 ? [0, Math.floor((balance.length - 1) / 2), balance.length - 1] : [0, balance.length - 1]
  for (const i of new Set(ticks)) {
    const anchor = i === 0 ? 'start' : i === balance.length - 1 ? 'end' : 'middle'
    chart.append(el('text', { x: x(i), y: height - 8, 'text-anchor': anchor, class: 'label' }, date(balance[i].date)))
  }
  chart.append(el('circle', { cx: x(balance.length - 1), cy: y(last.balanceCents), r: 3.5, class: 'dot' }))
  container.replaceChildren(chart)
}
