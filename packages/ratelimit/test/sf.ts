/**
 * A strict RFC 9651 (Structured Field Values) List parser, enough to check
 * draft-10's fields: items with parameters, bare items of every type but
 * inner lists and dates. Throws on anything the grammar does not allow.
 */
export type Bare = string | number | boolean | { token: string } | { bytes: string }
export interface Item { value: Bare, params: Record<string, Bare> }

export function parseList (input: string): Item[] {
  let i = 0
  const s = input.replace(/^ +| +$/g, '')
  const fail = (why: string): never => { throw new Error(`${why} at ${i} in ${JSON.stringify(input)}`) }
  const ows = () => { while (s[i] === ' ' || s[i] === '\t') i++ }
  const key = (): string => {
    if (!/[a-z*]/.test(s[i] ?? '')) fail('key must start with lcalpha or *')
    const start = i
    while (/[a-z0-9_\-.*]/.test(s[i] ?? '')) i++
    return s.slice(start, i)
  }
  const bare = (): Bare => {
    const c = s[i] ?? ''
    if (c === '"') {
      i++
      let out = ''
      for (;;) {
        const ch = s[i++]
        if (ch === undefined) fail('unterminated string')
        if (ch === '\\') {
          const next = s[i++]
          if (next !== '"' && next !== '\\') fail('bad escape')
          out += next
        } else if (ch === '"') return out
        else if ((ch as string) < ' ' || (ch as string) > '~') fail('non-printable in string')
        else out += ch
      }
    }
    if (c === '-' || /[0-9]/.test(c)) {
      const m = /^-?[0-9]{1,15}(\.[0-9]{1,3})?/.exec(s.slice(i))
      if (!m) fail('bad number')
      const text = (m as RegExpExecArray)[0]
      if (!text.includes('.') && text.replace('-', '').length > 15) fail('integer too long')
      i += text.length
      return Number(text)
    }
    if (c === '?') {
      const b = s[i + 1]
      if (b !== '0' && b !== '1') fail('bad boolean')
      i += 2
      return b === '1'
    }
    if (c === ':') {
      const end = s.indexOf(':', i + 1)
      if (end === -1) fail('unterminated byte sequence')
      const bytes = s.slice(i + 1, end)
      if (!/^[A-Za-z0-9+/=]*$/.test(bytes)) fail('bad base64')
      i = end + 1
      return { bytes }
    }
    if (/[A-Za-z*]/.test(c)) {
      const start = i
      while (/[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/.test(s[i] ?? '')) i++
      return { token: s.slice(start, i) }
    }
    return fail('bad bare item')
  }
  const params = (): Record<string, Bare> => {
    const out: Record<string, Bare> = {}
    while (s[i] === ';') {
      i++
      while (s[i] === ' ') i++
      const k = key()
      if (s[i] === '=') { i++; out[k] = bare() } else out[k] = true
    }
    return out
  }
  const items: Item[] = []
  if (s.length === 0) return items
  for (;;) {
    if (s[i] === '(') fail('inner lists not expected here')
    const value = bare()
    items.push({ value, params: params() })
    ows()
    if (i >= s.length) return items
    if (s[i] !== ',') fail('expected ,')
    i++
    ows()
    if (i >= s.length) fail('trailing comma')
  }
}
