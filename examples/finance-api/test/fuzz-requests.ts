import { METHODS } from 'node:http'
import fc from 'fast-check'

/**
 * The requests the property-based test sends: for every route, bodies and
 * query strings shaped by its schema with values from inside and outside it
 * (wrong types, boundary numbers, unusual Unicode, control characters), and
 * requests no schema describes (random JSON, malformed JSON, huge and deep
 * bodies, malformed cookies and cursors, odd methods and paths).
 */

/** who sends it: a logged-in user, nobody, or someone holding a tampered copy of a user's cookie */
export type Actor = 'A' | 'B' | 'anonymous' | 'tampered'

export interface FuzzRequest {
  actor: Actor
  method: string
  url: string
  /** a body: JSON to serialize, raw text, or a huge/deep one built when sent (not kept in memory 10,000 times) */
  body?: { json: unknown } | { raw: string, contentType?: string } | { huge: number } | { deep: number }
  /** the CSRF header: the actor's token (default), a wrong one, or none */
  csrf?: 'valid' | 'wrong' | 'none'
  cookie?: string
}

/** What a generated value may refer to: the users' own account and transaction ids and the other user's. */
export interface World {
  accountsOf: Record<'A' | 'B', string[]>
  transactionsOf: Record<'A' | 'B', string[]>
}

const UNUSUAL = [
  '\u0000', '\u0001', '\u0008', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u009f', // control characters
  '\ud800', '\udbff', '\udc00', '\udfff', // lone surrogates
  '\u00a0', '\u2028', '\u2029', '\u200b', '\u200e', '\u202e', '\ufeff', '\ufffe', '\uffff', '\ufffd', // spaces, marks, non-characters
  '😀', '👩‍👩‍👧', '🇫🇷', 'e\u0301', '\u0301', 'ß', 'İ', 'ﬁ', '貯', 'ع', '𝔘', // emoji, combining, case-folding traps, scripts
  '%', '%00', '\\', '"', "'", '<script>', '$' + '{x}', '../', ',', ';', '=', ' ' // syntax of other languages
]

const unusualChar = fc.constantFrom(...UNUSUAL)
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c))
const anyChar = fc.oneof(
  { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 2 },
  { arbitrary: unusualChar, weight: 3 },
  { arbitrary: loneSurrogate, weight: 1 }
)

/** Text from plain to hostile, lengths around the schemas' bounds (50, 100, 200, 254). */
export const text = fc.oneof(
  { arbitrary: fc.string({ maxLength: 30 }), weight: 4 },
  { arbitrary: fc.array(anyChar, { maxLength: 40 }).map((cs) => cs.join('')), weight: 4 },
  { arbitrary: fc.constantFrom('', ' ', '   ', '\t', '\u00a0'), weight: 1 },
  { arbitrary: fc.tuple(fc.constantFrom(49, 50, 51, 99, 100, 101, 199, 200, 201, 253, 254, 255, 1000), fc.constantFrom('x', 'é', '😀', ' ')).map(([n, c]) => c.repeat(n)), weight: 1 },
  { arbitrary: fc.tuple(fc.string({ maxLength: 10 }), unusualChar, fc.string({ maxLength: 10 })).map((p) => p.join('')), weight: 2 }
)

/** Text the schemas accept: printable graphemes of any script, emoji, marks and spaces inside, at most `max` long */
function validText (max: number): fc.Arbitrary<string> {
  const inner = fc.oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }), fc.constantFrom('😀', '👩‍👩‍👧', 'e\u0301', '\u202e', '\u200b', '\ufffe', '\ufeff', '\u00a0', ' ', '貯', '𝔘', "'", '"', '\\', '%'))
  return fc.array(inner, { minLength: 1, maxLength: Math.min(max, 40) }).map((cs) => `x${cs.join('')}`.slice(0, max))
}

/** Timestamps the schemas accept: 1900–9999 in UTC, offsets up to ±14:00. */
const validTimestamp = fc.tuple(
  fc.date({ min: new Date(Date.UTC(1900, 0, 2)), max: new Date(Date.UTC(9999, 11, 30)), noInvalidDate: true }),
  fc.constantFrom('Z', '+00:00', '-12:00', '+14:00', '+05:30', '-03:30')
).map(([d, off]) => d.toISOString().slice(0, -1) + off)

const NUMBERS = [0, -0, 1, -1, 0.5, 1.5, -1.5, 1e9, 1e9 + 1, -1e9, -1e9 - 1, 2 ** 31, 2 ** 53, -(2 ** 53), 2 ** 63, 1e19, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER]
export const number = fc.oneof(fc.constantFrom(...NUMBERS), fc.integer(), fc.integer({ min: -1e9, max: 1e9 }), fc.double({ noNaN: true, noDefaultInfinity: true }))

/** timestamps: valid RFC 3339 across and beyond the accepted range, odd offsets, non-dates */
export const timestamp = fc.oneof(
  fc.date({ min: new Date(Date.UTC(1900, 0, 1)), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.tuple(
    fc.integer({ min: 0, max: 10000 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }),
    fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }), fc.integer({ min: 0, max: 61 }),
    fc.constantFrom('Z', 'z', '+00:00', '-00:00', '+14:00', '+14:01', '-12:00', '+15:59', '+16:00', '+23:59', '+99:99', '', '+05', '+0530'),
    fc.constantFrom('', '.1', '.999999', '.9999999', '.123456789', '.1234567890')
  ).map(([y, mo, d, h, mi, s, off, frac]) => `${String(y).padStart(4, '0')}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${frac}${off}`),
  fc.constantFrom('0000-01-01T00:00:00Z', '9999-12-31T23:59:59.9999999Z', '2026-02-30T00:00:00Z', '2026-01-01T24:00:00Z', 'infinity', '-infinity', 'now', 'epoch', 'allballs', '2026-01-01 BC'),
  text
)

function pad (n: number): string {
  return String(n).padStart(2, '0')
}

/** any JSON, wrong types for every field */
const json = fc.jsonValue({ maxDepth: 3 })

function idOf (world: World): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...world.accountsOf.A, ...world.accountsOf.B),
    fc.stringMatching(/^[0-9]{1,25}$/),
    fc.constantFrom('0', '-1', '1e3', '0x10', ' 1', '1 ', '9223372036854775807', '9223372036854775808', '999999999999999999'),
    text
  )
}

/** A value for a field: mostly of the right kind, otherwise anything. */
function field<T> (right: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ arbitrary: right, weight: 4 }, { arbitrary: json, weight: 1 })
}

/** a body shaped by a schema: each property present or not, rarely an extra one */
function shaped (model: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<{ json: unknown }> {
  return fc.tuple(
    fc.record(model, { requiredKeys: [] }),
    fc.option(fc.tuple(fc.string({ maxLength: 12 }), json), { freq: 10 })
  ).map(([body, extra]) => ({ json: extra ? { ...body, [extra[0]]: extra[1] } : body }))
}

const cursor = fc.oneof(
  fc.base64String({ maxLength: 80 }),
  fc.string({ maxLength: 80 }),
  fc.tuple(timestamp, fc.oneof(fc.stringMatching(/^[0-9]{1,20}$/), json)).map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
  fc.tuple(
    fc.constantFrom('2026-01-01 00:00:00+00', '2026-02-30 00:00:00+00', '0000-01-01 00:00:00+00', '1900-01-01 00:00:00+00:09:21', '9999-12-31 23:59:59.999999+00', '2026-01-01 00:00:00+16', '2026-01-01 00:00:00+00 BC'),
    fc.stringMatching(/^[0-9]{1,20}$/)
  ).map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
  json.map((v) => Buffer.from(JSON.stringify(v) ?? '').toString('base64url'))
)

const queryValue = fc.oneof(text, fc.constantFrom('', '1', '20', '100', '101', '0', '-1', '1.5', 'NaN', '1e2', 'true'), fc.stringMatching(/^[A-Z.,]{0,30}$/))
/** percent-encoded; a lone surrogate (which UTF-8 cannot encode) is sent as the bytes of its CESU-8 form, themselves invalid UTF-8 */
const enc = (s: string) => Array.from(s, (c) => /^[\ud800-\udfff]$/.test(c) ? '%ED%A0%80' : encodeURIComponent(c)).join('')

function query (params: Array<[string, fc.Arbitrary<string>]>): fc.Arbitrary<string> {
  return fc.array(fc.oneof(...params.map(([k, v]) => v.map((x) => `${k}=${enc(x)}`)), fc.tuple(fc.string({ maxLength: 8 }), queryValue).map(([k, v]) => `${enc(k)}=${enc(v)}`)), { maxLength: 3 })
    .map((parts) => (parts.length ? `?${parts.join('&')}` : ''))
}

const PATHS = ['/', '/api/accounts', '/api/transactions', '/api/summary', '/api/insights', '/api/quotes', '/api/trends', '/api/auth/signup', '/api/auth/login', '/api/auth/me', '/api/auth/logout', '/api/auth/logout-everywhere', '/health', '/health/ready', '/metrics', '/assets/app.js']
const oddPath = fc.oneof(
  fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom('', '/', '//', '/..', '/%2e%2e', '%00', '/%ff', '/%E0%A4%A', '?', '#x', '/1', '/9999999999999999999999', ';jsessionid=1', '.json', '/../../etc/passwd')).map(([p, s]) => p + s),
  fc.string({ maxLength: 40 }).map((s) => `/${enc(s)}`),
  fc.string({ maxLength: 40 }).map((s) => `/api/${s.replace(/[\s#?]/g, '')}`),
  fc.constantFrom('/assets/', '/assets/..%2fpackage.json', '/assets/%2e%2e/%2e%2e/package.json', '/ASSETS/app.js', '/api', '/API/accounts', `/${'a'.repeat(5000)}`, '/assets/app.js%00.png')
)

const cookieHeader = fc.oneof(
  fc.string({ maxLength: 60 }).map((s) => `sessionId=${s.replace(/[\r\n]/g, '')}`),
  fc.string({ maxLength: 60 }).map((s) => s.replace(/[\r\n]/g, '')),
  fc.constantFrom('sessionId=', 'sessionId=%', 'sessionId=%E0%A4%A', 'sessionId=a.b.c', '=;=;', 'sessionId="unterminated', `sessionId=${'x'.repeat(5000)}`, 'a=1; a=2; sessionId=1; sessionId=2')
)

/** Every request the test can send, weighted so the routes that reach PostgreSQL get most of them. */
export function requests (world: World): fc.Arbitrary<FuzzRequest> {
  const user = fc.constantFrom<Actor>('A', 'B')
  const anyone = fc.constantFrom<Actor>('A', 'B', 'anonymous', 'tampered')
  const csrf = fc.constantFrom<'valid' | 'wrong' | 'none'>('valid', 'valid', 'valid', 'valid', 'wrong', 'none')
  const id = idOf(world)
  const post = (url: string, body: fc.Arbitrary<FuzzRequest['body']>, actor = user) =>
    fc.record({ actor, method: fc.constant('POST'), url: fc.constant(url), body, csrf })
  const get = (url: fc.Arbitrary<string>, actor = anyone) => fc.record({ actor, method: fc.constant('GET'), url })
  const credentials = { email: field(fc.oneof(fc.emailAddress(), text)), password: field(text) }
  const own = fc.constantFrom(...world.accountsOf.A, ...world.accountsOf.B)
  const validAmount = fc.integer({ min: -1e9, max: 1e9 }).filter((n) => n !== 0)
  const validTx = fc.record({
    accountId: own,
    amountCents: validAmount,
    category: validText(50),
    description: validText(200),
    occurredAt: validTimestamp
  }, { requiredKeys: ['accountId', 'amountCents', 'category'] })
  return fc.oneof(
    // within the schemas: reaches PostgreSQL with unusual but valid values (and another user's account ids)
    { weight: 60, arbitrary: post('/api/transactions', validTx.map((json) => ({ json }))) },
    { weight: 20, arbitrary: post('/api/accounts', fc.record({ name: validText(100), kind: fc.constantFrom('checking', 'savings', 'brokerage', 'credit') }).map((json) => ({ json }))) },
    { weight: 120, arbitrary: post('/api/transactions', shaped({ accountId: field(id), amountCents: field(number), category: field(text), description: field(text), occurredAt: field(timestamp) })) },
    { weight: 60, arbitrary: post('/api/accounts', shaped({ name: field(text), kind: field(fc.oneof(fc.constantFrom('checking', 'savings', 'brokerage', 'credit', 'CHECKING', ''), text)) })) },
    // anonymous and without a valid password: never logs in as A or B (their passwords are not generated)
    { weight: 10, arbitrary: post('/api/auth/login', shaped(credentials), fc.constant<Actor>('anonymous')) },
    { weight: 5, arbitrary: post('/api/auth/signup', shaped({ ...credentials, name: field(text) }), fc.constant<Actor>('anonymous')) },
    // an edit: the user's own transactions, the other user's, and ids of nothing or not ids at all
    {
      weight: 60,
      arbitrary: fc.record({
        actor: user,
        method: fc.constant('PATCH'),
        url: fc.oneof(fc.constantFrom(...world.transactionsOf.A, ...world.transactionsOf.B), id).map((i) => `/api/transactions/${enc(i)}`),
        body: fc.oneof(
          // within the schema (reaches PostgreSQL), and shaped by it with values from outside
          fc.record({ amountCents: validAmount, category: validText(50), description: validText(200), occurredAt: validTimestamp }, { requiredKeys: [] }).map((json) => ({ json })),
          shaped({ amountCents: field(number), category: field(text), description: field(text), occurredAt: field(timestamp) })
        ),
        csrf
      })
    },
    { weight: 100, arbitrary: get(query([['limit', queryValue], ['cursor', cursor]]).map((q) => `/api/transactions${q}`)) },
    { weight: 40, arbitrary: get(query([['days', queryValue]]).map((q) => `/api/trends${q}`)) },
    { weight: 50, arbitrary: get(query([['symbols', queryValue]]).map((q) => `/api/quotes${q}`)) },
    { weight: 60, arbitrary: get(fc.constantFrom('/api/accounts', '/api/summary', '/api/insights', '/api/auth/me')) },
    { weight: 3, arbitrary: fc.record({ actor: user, method: fc.constant('POST'), url: fc.constantFrom('/api/auth/logout', '/api/auth/logout-everywhere'), csrf }) },
    // beyond the schemas
    { weight: 40, arbitrary: fc.record({ actor: anyone, method: fc.constant('POST'), url: fc.constantFrom('/api/transactions', '/api/accounts', '/api/auth/login', '/api/auth/signup'), body: json.map((v) => ({ json: v })), csrf }) },
    {
      weight: 30,
      arbitrary: fc.record({
        actor: anyone,
        method: fc.constantFrom('POST', 'PUT', 'PATCH'),
        url: fc.constantFrom('/api/transactions', '/api/accounts', '/api/auth/login'),
        body: fc.oneof(
          fc.tuple(fc.string({ maxLength: 60 }), fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data; boundary=x', 'application/xml'))
            .map(([raw, contentType]) => ({ raw, ...(contentType ? { contentType } : {}) })),
          fc.constantFrom('{"email":', '{"__proto__":{"admin":true},"email":"a@b.c","password":"long enough"}', '{"constructor":{"prototype":{"x":1}}}', '\u0000', '{"a":1}{"b":2}', '[]', 'null', '"string"', '1e999', '\ufeff{}').map((raw) => ({ raw, contentType: 'application/json' }))
        ),
        csrf
      })
    },
    { weight: 3, arbitrary: fc.record({ actor: user, method: fc.constant('POST'), url: fc.constantFrom('/api/transactions', '/api/auth/login'), body: fc.integer({ min: 900_000, max: 1_100_000 }).map((n) => ({ huge: n })), csrf }) },
    { weight: 10, arbitrary: fc.record({ actor: user, method: fc.constant('POST'), url: fc.constantFrom('/api/transactions', '/api/accounts'), body: fc.integer({ min: 1, max: 17 }).map((b) => ({ deep: 2 ** b })), csrf }) },
    { weight: 30, arbitrary: fc.record({ actor: anyone, method: fc.constantFrom(...METHODS.filter((m) => m !== 'CONNECT')), url: oddPath }) },
    { weight: 20, arbitrary: fc.record({ actor: fc.constant<Actor>('anonymous'), method: fc.constantFrom('GET', 'POST'), url: fc.constantFrom('/api/summary', '/api/accounts', '/api/auth/me', '/api/auth/logout'), cookie: cookieHeader }) }
  ) as fc.Arbitrary<FuzzRequest>
}

/** The body as sent, and its content type. */
export function payloadOf (body: FuzzRequest['body']): { payload?: string, contentType?: string } {
  if (body === undefined) return {}
  if ('json' in body) return { payload: JSON.stringify(body.json) ?? 'null', contentType: 'application/json' }
  if ('raw' in body) return { payload: body.raw, ...(body.contentType ? { contentType: body.contentType } : {}) }
  if ('huge' in body) return { payload: `{"accountId":"1","amountCents":1,"category":"${'x'.repeat(body.huge)}"}`, contentType: 'application/json' }
  const depth = body.deep
  return { payload: `{"name":${'{"a":['.repeat(depth)}1${']}'.repeat(depth)}}`, contentType: 'application/json' }
}

/** A short description of a request for a failure message (a huge body is not printed). */
export function describe (r: FuzzRequest): string {
  const body = r.body && ('huge' in r.body || 'deep' in r.body) ? r.body : payloadOf(r.body).payload?.slice(0, 300)
  return JSON.stringify({ ...r, body })
}
