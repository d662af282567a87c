/**
 * How a session lives in Redis: one hash per session, one field per top-level
 * key of the session data (JSON), plus `@exp`, the absolute expiry in ms. A
 * save writes only the fields that changed since the request read them, so
 * two concurrent requests that change different keys both persist.
 */

/** data fields are `=<key>` so no user key can clash with `@exp` */
export const FIELD_PREFIX = '='
export const EXPIRES_FIELD = '@exp'

/** top-level key → JSON of its value */
export type Fields = Record<string, string>

/** The session's data fields, JSON-encoded one by one (`cookie` is ours, not data). */
export function encode (session: object): Fields {
  const out: Fields = {}
  for (const key of Object.keys(session)) {
    if (key === 'cookie') continue
    const value = (session as Record<string, unknown>)[key]
    if (value === undefined || typeof value === 'function') continue
    out[key] = JSON.stringify(value)
  }
  return out
}

export function byteSize (fields: Fields): number {
  let size = 0
  for (const key in fields) size += Buffer.byteLength(key) + Buffer.byteLength(fields[key] as string)
  return size
}

export interface Diff {
  changed: Fields
  removed: string[]
}

/** What changed between the fields a request read (`before`, absent for a new session) and what it holds now. */
export function diff (before: Fields | undefined, now: Fields): Diff {
  if (!before) return { changed: now, removed: [] }
  const changed: Fields = {}
  for (const key in now) if (before[key] !== now[key]) changed[key] = now[key] as string
  const removed: string[] = []
  for (const key in before) if (!(key in now)) removed.push(key)
  return { changed, removed }
}

/** Applies a diff to fields held elsewhere (the in-memory fallback), as the Redis script does. */
export function apply (target: Fields, { changed, removed }: Diff): Fields {
  const out = { ...target, ...changed }
  for (const key of removed) delete out[key]
  return out
}

/** Redis hash → fields and expiry; null when absent or unreadable (never adopt a broken session). */
export function fromHash (hash: Record<string, string>): { fields: Fields, expiresAt: number } | null {
  const exp = hash[EXPIRES_FIELD]
  if (exp === undefined) return null
  const expiresAt = Number(exp)
  if (!Number.isFinite(expiresAt)) return null
  const fields: Fields = {}
  for (const name in hash) {
    if (name.startsWith(FIELD_PREFIX)) fields[name.slice(FIELD_PREFIX.length)] = hash[name] as string
  }
  return { fields, expiresAt }
}

/** Fields → session data; null if a field is not valid JSON. */
export function decode (fields: Fields): Record<string, unknown> | null {
  const out: Record<string, unknown> = {}
  try {
    for (const key in fields) out[key] = JSON.parse(fields[key] as string)
  } catch {
    return null
  }
  return out
}

/** The user a session belongs to, from its encoded `userId` field. */
export function userOf (fields: Fields | undefined): string | undefined {
  const raw = fields?.userId
  if (raw === undefined) return undefined
  try {
    const value: unknown = JSON.parse(raw)
    return value === null || value === undefined ? undefined : String(value)
  } catch {
    return undefined
  }
}
