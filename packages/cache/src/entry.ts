import { randomBytes } from 'node:crypto'
import type { ResolvedPolicy } from './options.js'
import { InvalidKey, InvalidUser } from './errors.js'

/**
 * One cached value as both tiers hold it: the serialized value and its
 * absolute deadlines, so an entry read from L2 carries its *remaining*
 * life into L1 and both tiers hand out the same (deserialized) types.
 */
export interface Entry {
  /** JSON of the value */
  raw: string
  /** unique per write; the HTTP ETag */
  version: string
  createdAt: number
  freshUntil: number
  /** end of the stale-while-revalidate window */
  swrUntil: number
  /** end of the stale-if-error grace period */
  graceUntil: number
  tags: string[]
  /** bytes of `raw`, what L1 is bounded by */
  size: number
  /** when L1 must drop it (capped TTL); set when it enters L1 */
  l1Until?: number
  /** memo of the decoded value, for internal read-only users (HTTP replies) */
  decoded?: unknown
}

const instanceTag = randomBytes(6).toString('base64url')
let counter = 0

export function newVersion (): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER
  return `${instanceTag}${counter.toString(36)}`
}

export function makeEntry (raw: string, policy: ResolvedPolicy, tags: string[], now: number): Entry {
  const freshUntil = now + policy.ttl
  return {
    raw,
    version: newVersion(),
    createdAt: now,
    freshUntil,
    swrUntil: freshUntil + policy.staleWhileRevalidate,
    graceUntil: freshUntil + policy.staleIfError,
    tags,
    size: Buffer.byteLength(raw)
  }
}

/** end of the entry's physical life: no window can use it after this */
export function expiresAt (entry: Entry): number {
  return Math.max(entry.swrUntil, entry.graceUntil)
}

/** L2 form: a JSON header line, then the raw value (JSON escapes newlines, so the first one ends the header). */
export function encodeEntry (entry: Entry): string {
  return JSON.stringify([entry.version, entry.createdAt, entry.freshUntil, entry.swrUntil, entry.graceUntil, entry.tags]) + '\n' + entry.raw
}

export function decodeEntry (text: string): Entry | undefined {
  const nl = text.indexOf('\n')
  if (nl < 0) return undefined
  try {
    const [version, createdAt, freshUntil, swrUntil, graceUntil, tags] = JSON.parse(text.slice(0, nl)) as [string, number, number, number, number, string[]]
    const raw = text.slice(nl + 1)
    return { raw, version, createdAt, freshUntil, swrUntil, graceUntil, tags, size: Buffer.byteLength(raw) }
  } catch {
    return undefined
  }
}

export const MAX_KEY_LENGTH = 4096

export function checkKey (key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKey(`a key is a non-empty string, got ${typeof key === 'string' ? 'an empty string' : typeof key}`)
  if (key.length > MAX_KEY_LENGTH) throw new InvalidKey(`a key is at most ${MAX_KEY_LENGTH} characters`)
  return key
}

export function checkTags (tags: unknown): string[] {
  if (tags === undefined) return []
  if (!Array.isArray(tags)) throw new InvalidKey('tags must be an array of non-empty strings')
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > 256) throw new InvalidKey('a tag is a non-empty string of at most 256 characters')
  }
  return tags as string[]
}

/** `%` and `|` escaped, so a user id can never spill into the key segment next to it. */
export function encodeUser (user: unknown): string {
  if (typeof user === 'number' && Number.isFinite(user)) user = String(user)
  if (typeof user !== 'string' || user.length === 0 || user.length > 256) {
    throw new InvalidUser('the user is a non-empty string (or a finite number) of at most 256 characters')
  }
  return (user as string).replace(/%/g, '%25').replace(/\|/g, '%7C')
}

/**
 * Key layout. Shared: `<ns>|s|<key>`. Per-user: `<ns>|u|<user>|<key>`.
 * Namespace names hold no `|` and users are escaped, so no shared key and no
 * other user's key can spell the same string. Tags follow the same rule:
 * `g|<tag>` for global tags, `u|<ns>|<user>|<tag>` for a user's tags, and
 * `u|<ns>|<user>|` tags every entry of that user.
 */
export const sharedKey = (ns: string, key: string): string => `${ns}|s|${key}`
export const userPrefix = (ns: string, user: string): string => `${ns}|u|${user}|`
export const globalTag = (tag: string): string => `g|${tag}`
export const userTagPrefix = (ns: string, user: string): string => `u|${ns}|${user}|`
