// Small shared helpers: element lookup and how money and dates are written.
export const $ = (id) => document.getElementById(id)

export const money = (cents) => (cents / 100).toLocaleString('en-US', { style: 'currency', currency: 'USD' })

/** a transaction's date as the reader's calendar shows it: "Dec 1, 2026" */
export const shortDate = (iso) => new Date(iso).toLocaleDateString('en-US', { month: 'short', day: 'numeric', year: 'numeric' })

/** a chart's UTC day ("2026-12-01") without moving it to the reader's time zone: "Dec 1" */
export const dayLabel = (day) => new Date(day + 'T00:00:00Z').toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' })

export function li (text, className) {
  const el = document.createElement('li')
  el.textContent = text
  if (className) el.className = className
  return el
}
