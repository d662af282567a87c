import { Ajv, type KeywordDefinition, type Options } from 'ajv'
import addFormatsModule from 'ajv-formats'
import type { FastifySchema, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'

// (ajv-formats is CommonJS: its default export arrives as `default` under NodeNext)
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default

/**
 * What PostgreSQL can store in a `text` column, and what this API accepts in
 * one: no control characters (C0, DEL, C1 — NUL is refused by PostgreSQL
 * itself, the others are never meant in a name) and no lone UTF-16
 * surrogate (JavaScript strings can hold one, UTF-8 cannot: the driver
 * would store U+FFFD in its place). Compiled with the `u` flag, so a
 * well-formed surrogate pair is one character and passes.
 */
export const SAFE_TEXT_PATTERN = '^[^\\p{Cc}\\p{Cs}]*$'

/**
 * A text field: trimmed before its length is checked (a name of spaces is
 * empty, hence refused by `minLength: 1`), and stored trimmed.
 */
export function text (minLength: number, maxLength: number) {
  return { type: 'string', trim: true, minLength, maxLength, pattern: SAFE_TEXT_PATTERN } as const
}

/** A secret (a password): never trimmed, otherwise the same characters as text. */
export function secret (minLength: number, maxLength: number) {
  return { type: 'string', minLength, maxLength, pattern: SAFE_TEXT_PATTERN } as const
}

/** A bigint id in its decimal text form: 18 digits always fit (the largest bigint has 19). */
export const ID = { type: 'string', pattern: '^[0-9]{1,18}$' } as const

/** A timestamp a client may send: RFC 3339 within the accepted range (see `checkTimestamp`). */
export const TIMESTAMP = { type: 'string', format: 'finance-timestamp' } as const

/** @default 1900-01-01T00:00:00Z: the earliest instant a client may send */
export const MIN_TIMESTAMP_MS = Date.UTC(1900, 0, 1)
/** @default 10000-01-01T00:00:00Z (excluded): four-digit years, as PostgreSQL prints them in the cursors */
export const MAX_TIMESTAMP_MS = Date.UTC(10000, 0, 1)
/** @default 14 hours: the largest UTC offset in use anywhere (Kiribati) */
export const MAX_CLIENT_OFFSET_S = 14 * 3600
/** PostgreSQL's own bound on a timestamptz offset: ±15:59:59 */
export const MAX_PG_OFFSET_S = 15 * 3600 + 59 * 60 + 59

interface TimestampParts { year: number, month: number, day: number, hour: number, minute: number, second: number, fraction: string, offsetS: number }

/** `2026-01-31T12:00:00.123Z`, `…+02:00` (RFC 3339; `t` and `z` in either case, as RFC 3339 allows) */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/
/** timestamptz as PostgreSQL prints it (DateStyle ISO): `2026-01-31 12:00:00.123456+00`, offsets down to seconds */
const PG_TEXT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?()([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?$/

function parts (m: RegExpExecArray | null): TimestampParts | undefined {
  if (!m) return undefined
  const n = (i: number) => Number(m[i] ?? 0)
  const sign = m[9] === '-' ? -1 : 1
  const offsetS = m[8] ? 0 : sign * (n(10) * 3600 + n(11) * 60 + n(12))
  return { year: n(1), month: n(2), day: n(3), hour: n(4), minute: n(5), second: n(6), fraction: m[7] ?? '', offsetS }
}

/**
 * The UTC milliseconds of a valid timestamp, or undefined: a real calendar
 * day (no February 30th, which `Date.parse` rolls over and PostgreSQL
 * refuses), hours 00–23, seconds 00–59 (no leap second), an offset within
 * `maxOffsetS`, and microseconds as PostgreSQL rounds them.
 */
function instant (p: TimestampParts | undefined, maxOffsetS: number): number | undefined {
  if (!p) return undefined
  const { year, month, day, hour, minute, second, offsetS } = p
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined
  if (Math.abs(offsetS) > maxOffsetS) return undefined
  const micros = Math.round(Number(`0.${p.fraction || '0'}`) * 1e6)
  const utc = new Date(0)
  utc.setUTCFullYear(year, month - 1, day)
  utc.setUTCHours(hour, minute, second)
  // whole milliseconds: a double cannot hold 253402300799999.999 (it would round up into year 10000)
  return utc.getTime() + Math.floor(micros / 1000) - offsetS * 1000
}

/** A client's timestamp (`occurredAt`): RFC 3339, years 1900–9999 in UTC, offsets up to ±14:00. */
export function checkTimestamp (s: string): boolean {
  const ms = instant(parts(RFC3339.exec(s)), MAX_CLIENT_OFFSET_S)
  return ms !== undefined && ms >= MIN_TIMESTAMP_MS && ms < MAX_TIMESTAMP_MS
}

/** A timestamp PostgreSQL printed (a cursor's): any year 1–9999 it can parse back, offsets up to its ±15:59:59. */
export function checkPgTimestamp (s: string): boolean {
  return instant(parts(PG_TEXT.exec(s)), MAX_PG_OFFSET_S) !== undefined
}

/**
 * `trim: true` on a string schema: the value is trimmed in place before the
 * length and pattern keywords see it (`before: 'maxLength'` orders it ahead
 * of them; ajv rereads the data after a modifying keyword).
 */
const trimKeyword: KeywordDefinition = {
  keyword: 'trim',
  type: 'string',
  schemaType: 'boolean',
  modifying: true,
  before: 'maxLength',
  compile: (enabled: boolean) => function trim (data: string, ctx) {
    if (enabled && ctx?.parentData !== undefined && ctx.parentDataProperty !== undefined) {
      (ctx.parentData as Record<string | number, unknown>)[ctx.parentDataProperty] = data.trim()
    }
    return true
  }
}

function compiler (options: Options): Ajv {
  const ajv = new Ajv({ useDefaults: true, allErrors: false, ...options })
  addFormats(ajv)
  ajv.addFormat('finance-timestamp', checkTimestamp)
  ajv.addKeyword(trimKeyword)
  return ajv
}

/**
 * Bodies are JSON, so their types are meant: no coercion (`"5"` and `true`
 * are not the integer 5 and 1). A query string and URL parameters are text
 * by nature: their numbers are coerced, and a repeated parameter becomes an
 * array, which a scalar schema refuses. Both drop a property their schema
 * does not list (`additionalProperties: false`), as Fastify does by default:
 * it never reaches a handler, and a client sending one more field keeps working.
 */
const compilers = {
  body: compiler({ coerceTypes: false, removeAdditional: true }),
  text: compiler({ coerceTypes: 'array', removeAdditional: true })
}

/** The example's validator compiler (set once, in app.ts). */
export const validatorCompiler: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? compilers.body : compilers.text).compile(schema as object) as ReturnType<FastifySchemaCompiler<FastifySchema>>

/** What a refused value was meant to be, in words, where ajv's message would quote a regular expression. */
const EXPECTED: Record<string, string> = {
  [SAFE_TEXT_PATTERN]: 'must not contain control characters (NUL included) or unpaired UTF-16 surrogates',
  'finance-timestamp': 'must be an RFC 3339 date-time (2026-01-31T12:00:00Z) between the years 1900 and 9999, offset at most ±14:00'
}

const NOT_ZERO = 'must not be 0: a negative amount is spending, a positive one income'

/** Fastify's validation message (`body/name must …`), with words instead of the safe-text pattern and the timestamp format. */
export const schemaErrorFormatter = (errors: FastifySchemaValidationError[], dataVar: string): Error => new Error(errors.map((e) => {
  // ajv says "must NOT be valid" for a `not`; the schemas' only one is the amount's `not: { const: 0 }`
  const zero = e.keyword === 'not' && e.instancePath.endsWith('/amountCents') ? NOT_ZERO : undefined
  const expected = zero ?? EXPECTED[String(e.params.pattern ?? e.params.format)]
  return `${dataVar}${e.instancePath} ${expected ?? e.message ?? 'is invalid'}`
}).join(', '))
