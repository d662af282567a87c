/**
 * Every option a plugin accepts, as an object so the compiler holds it to the
 * options type: a key missing here, or one the type does not have, fails to
 * compile, and a new option cannot be forgotten in the unknown-option check.
 */
export type OptionNames<O> = { readonly [K in keyof Required<O>]: true }

/**
 * Throws `fail(name, reason)` for the first key of `opts` that is not in
 * `known`: a typo such as `maxx` or `keyprefix` is an error at registration
 * instead of a default silently used. The reason names the intended option
 * when one is close (`is unknown; did you mean "max"?`); `renamed` gives a
 * reason of its own for names users bring from other plugins (`timeWindow`
 * -> `window`). `path` names a nested object (`cookie` gives `cookie.sameSit`).
 * A value that is not an object is left to the option's own type check.
 */
export function rejectUnknownOptions (
  opts: unknown,
  known: Readonly<Record<string, true>>,
  fail: (name: string, reason: string) => Error,
  renamed: Readonly<Record<string, string>> = {},
  path = ''
): void {
  if (typeof opts !== 'object' || opts === null) return
  for (const key of Object.keys(opts)) {
    if (Object.hasOwn(known, key)) continue
    const name = path === '' ? key : `${path}.${key}`
    if (Object.hasOwn(renamed, key)) throw fail(name, `is unknown; ${renamed[key]}`)
    const near = closest(key, Object.keys(known))
    throw fail(name, near === undefined ? `is unknown; the options are ${Object.keys(known).join(', ')}` : `is unknown; did you mean "${near}"?`)
  }
}

/** The candidate nearest to `name` when it is close enough to be a typo of it, else undefined. */
export function closest (name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase()
  // a third of the name may be wrong: `replicasMax` -> `replicaMax`, not `max` -> `min`
  const bound = Math.max(1, Math.floor(name.length / 3))
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const d = candidate.toLowerCase() === lower ? 0 : distance(lower, candidate.toLowerCase())
    if (d < bestDistance) { best = candidate; bestDistance = d }
  }
  return bestDistance <= bound ? best : undefined
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
function distance (a: string, b: string): number {
  const rows: number[][] = []
  for (let i = 0; i <= a.length; i++) rows.push([i])
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i]!
    const prev = rows[i - 1]!
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1)
      row[j] = d
    }
  }
  return rows[a.length]![b.length]!
}
