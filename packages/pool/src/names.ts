import type pg from 'pg'
import { textOf } from './tracing.js'

/**
 * Query labels for the metrics: the name the caller gave, else the statement
 * with its literals replaced by `?`, whitespace collapsed and cut to 80
 * characters. At most `maxNames` distinct labels; the rest are `other`, so a
 * statement built by string concatenation cannot blow up the registry.
 */
export class QueryNames {
  readonly #byText = new Map<string, string>()
  readonly #labels = new Set<string>()

  readonly #maxNames: number

  constructor (maxNames: number) {
    this.#maxNames = maxNames
  }

  label (text: string, name?: string): string {
    if (name !== undefined) return this.#admit(name.slice(0, 80))
    const cached = this.#byText.get(text)
    if (cached !== undefined) return cached
    const label = this.#admit(normalizeStatement(text))
    // statements are usually constants; the cap keeps concatenated ones from growing the cache
    if (this.#byText.size < this.#maxNames * 10) this.#byText.set(text, label)
    return label
  }

  /** the label of `query`: `options.name`, else the query config's own `name`, else its normalised statement */
  of (query: string | pg.QueryConfig, options?: { name?: string }): string {
    return this.label(textOf(query), options?.name ?? (typeof query === 'string' ? undefined : query.name))
  }

  #admit (label: string): string {
    if (this.#labels.has(label)) return label
    if (this.#labels.size >= this.#maxNames) return 'other'
    this.#labels.add(label)
    return label
  }
}

/** `text` without comments and literals (strings, numbers: `?`), whitespace collapsed, cut to `max` characters */
export function normalizeStatement (text: string, max = 80): string {
  return text
    // dollar-quoted literals ($$…$$, $tag$…$tag$) first: their bodies may hold quotes or dashes
    .replace(/\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1\$/g, '?')
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/(?<![$\w])\d+(?:\.\d+)?\b/g, '?')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, max)
}
