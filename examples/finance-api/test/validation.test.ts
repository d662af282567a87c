import t from 'tap'
import { Client } from './helpers.js'
import { cursorOf, hostileApp, user } from './hostile.js'

/**
 * Every class of input PostgreSQL cannot store, or that a client did not
 * mean, is a 400 with a message: never a 500 from the database.
 */
t.test('validation', async (t) => {
  const app = await hostileApp(t)
  const { client: c, account } = await user(app, 'valid@example.com', 'Valid')
  const tx = (fields: Record<string, unknown>) => c.post('/api/transactions', { accountId: account, amountCents: -100, category: 'misc', ...fields })

  t.test('control characters and lone surrogates are refused in every text field, login included', async (t) => {
    // (inside the text: a control character at either end would be trimmed away, as spaces are)
    const hostile = { NUL: '\u0000', 'C0 (SOH)': '\u0001', 'line feed': '\n', DEL: '\u007f', 'C1 (NEL)': '\u0085', 'lone high surrogate': '\ud800', 'lone low surrogate': '\udfff' }
    for (const [what, ch] of Object.entries(hostile)) {
      const bodies: Array<[string, string, Record<string, unknown>]> = [
        ['signup email', '/api/auth/signup', { email: `a${ch}b@example.com`, password: 'long enough password', name: 'x' }],
        ['signup name', '/api/auth/signup', { email: 'ok-name@example.com', password: 'long enough password', name: `a${ch}b` }],
        ['signup password', '/api/auth/signup', { email: 'ok-pw@example.com', password: `long enough${ch}password`, name: 'x' }],
        ['login email', '/api/auth/login', { email: `valid${ch}@example.com`, password: 'long enough password' }],
        ['login password', '/api/auth/login', { email: 'valid@example.com', password: `long enough${ch}password` }],
        ['account name', '/api/accounts', { name: `Sav${ch}ings`, kind: 'savings' }],
        ['category', '/api/transactions', { accountId: account, amountCents: -1, category: `fo${ch}od` }],
        ['description', '/api/transactions', { accountId: account, amountCents: -1, category: 'food', description: `x${ch}y` }]
      ]
      for (const [field, path, body] of bodies) {
        const res = await c.post(path, body)
        t.equal(res.status, 400, `${what} in the ${field}: ${res.status} ${JSON.stringify(res.body)}`)
        t.match(res.body.message, /control characters/, `${what} in the ${field}: the message says why`)
      }
    }
    const emoji = await c.post('/api/accounts', { name: 'Rainy day 💶 épargne 貯金', kind: 'savings' })
    t.equal(emoji.status, 201, 'well-formed non-ASCII text (a surrogate pair included) is stored as sent')
    t.equal(emoji.body.name, 'Rainy day 💶 épargne 貯金')
  })

  t.test('timestamps: what PostgreSQL would refuse and what is out of the accepted range are 400s; the bounds are accepted', async (t) => {
    const refused = [
      '0000-01-01T00:00:00Z', // PostgreSQL: "date/time field value out of range"
      '1899-12-31T23:59:59Z', // before the accepted range
      '1900-01-01T00:00:00+01:00', // 1899 in UTC
      '10000-01-01T00:00:00Z',
      '9999-12-31T23:59:59-00:01', // year 10000 in UTC
      '2026-01-01T00:00:00+23:59', // PostgreSQL: "time zone displacement out of range"
      '2026-01-01T00:00:00+14:01',
      '2026-01-01T00:00:00+99:00',
      '2026-02-30T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T23:59:60Z', // a leap second, which PostgreSQL rolls into the next day
      '2026-01-01T00:00:00', // no offset: which day it is depends on the server's zone
      '2026-01-01',
      '2026-01-01T00:00:00.1234567890Z',
      '9999-12-31T23:59:59.9999999Z', // PostgreSQL rounds to microseconds: year 10000
      ' 2026-01-01T00:00:00Z',
      'yesterday',
      'epoch'
    ]
    for (const occurredAt of refused) {
      const res = await tx({ occurredAt })
      t.equal(res.status, 400, `${occurredAt}: ${res.status} ${JSON.stringify(res.body)}`)
      t.match(res.body.message, /RFC 3339 date-time .* 1900 and 9999/, `${occurredAt}: the message names the accepted range`)
    }
    const accepted = [
      '1900-01-01T00:00:00Z',
      '1900-01-01T00:59:59+00:59',
      '9999-12-31T23:59:59.999999Z',
      '2024-02-29T12:00:00.5+14:00',
      '2026-06-30T08:00:00-12:00',
      '2026-01-01t00:00:00z'
    ]
    for (const occurredAt of accepted) t.equal((await tx({ occurredAt })).status, 201, `${occurredAt} is accepted`)
    // the cursors PostgreSQL prints for the extremes come back as valid cursors
    let cursor: string | null = null
    let rows = 0
    do {
      const page: { status: number, body: { items: unknown[], next: string | null } } = await c.get(`/api/transactions?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      t.equal(page.status, 200)
      rows += page.body.items.length
      cursor = page.body.next
    } while (cursor)
    t.equal(rows, accepted.length, 'pagination walks the rows at both ends of the range')
  })

  t.test('cursors: anything the API cannot have written is 400 FINANCE_BAD_CURSOR', async (t) => {
    const bad = {
      'not base64url': '%%%',
      'base64 with padding and +/': 'WyIyMDI2LTAxLTAxIDAwOjAwOjAwKzAwIiwiMSJd+/==',
      'garbage JSON': cursorOf('{"a":1'),
      'JSON of another shape': cursorOf({ ts: '2026-01-01 00:00:00+00', id: '1' }),
      'three elements': cursorOf(['2026-01-01 00:00:00+00', '1', '2']),
      'a numeric id': cursorOf(['2026-01-01 00:00:00+00', 1]),
      'an id beyond bigint': cursorOf(['2026-01-01 00:00:00+00', '99999999999999999999']),
      'a negative id': cursorOf(['2026-01-01 00:00:00+00', '-1']),
      'year 0': cursorOf(['0000-01-01 00:00:00+00', '1']),
      'a five-digit year': cursorOf(['99999-01-01 00:00:00+00', '1']),
      BC: cursorOf(['2026-01-01 00:00:00+00 BC', '1']),
      'February 30th': cursorOf(['2026-02-30 00:00:00+00', '1']),
      '24:00': cursorOf(['2026-01-01 24:00:00+00', '1']),
      'offset +16': cursorOf(['2026-01-01 00:00:00+16', '1']),
      'a NUL': cursorOf(['2026-01-01 00:00:00+00\u0000', '1']),
      infinity: cursorOf(['infinity', '1'])
    }
    for (const [what, cursor] of Object.entries(bad)) {
      const res = await c.get(`/api/transactions?cursor=${encodeURIComponent(cursor)}`)
      t.equal(res.status, 400, `${what}: ${res.status}`)
      t.equal(res.body.code, 'FINANCE_BAD_CURSOR', what)
    }
    const printed = cursorOf(['1900-01-01 00:09:21.123456+00:09:21', '1'])
    t.equal((await c.get(`/api/transactions?cursor=${printed}`)).status, 200, 'an offset in seconds (as PostgreSQL prints a historical zone) is a valid cursor')
  })

  t.test('strict types: a body is JSON as sent, never coerced; query numbers are', async (t) => {
    const wrong: Array<[string, Record<string, unknown>]> = [
      ['amountCents as a string', { amountCents: '500' }],
      ['amountCents true', { amountCents: true }],
      ['amountCents null', { amountCents: null }],
      ['amountCents in an array', { amountCents: [500] }],
      ['amountCents 1.5', { amountCents: 1.5 }],
      ['amountCents zero', { amountCents: 0 }],
      ['amountCents above the bound', { amountCents: 1_000_000_001 }],
      ['amountCents beyond bigint', { amountCents: 1e19 }],
      ['accountId as a number', { accountId: Number(account) }],
      ['accountId of 19 digits', { accountId: '9223372036854775808' }],
      ['category as a number', { category: 5 }]
    ]
    for (const [what, fields] of wrong) t.equal((await tx(fields)).status, 400, what)
    t.equal((await c.post('/api/accounts', { name: 42, kind: 'savings' })).status, 400, 'a name that is a number')
    t.equal((await new Client(app).post('/api/auth/login', { email: ['valid@example.com'], password: 'long enough password' })).status, 400, 'an email in an array')
    t.equal((await tx({ amountCents: 1_000_000_000 })).status, 201, 'the upper bound is accepted')
    const extra = await tx({ note: 'x', userId: '1' })
    t.equal(extra.status, 201, 'a property the route does not know is dropped, as before')
    t.notOk('note' in extra.body || 'userId' in extra.body)
    const page = await c.get('/api/transactions?limit=1')
    t.equal(page.status, 200, 'limit from the query string is coerced to a number')
    t.equal(page.body.items.length, 1)
    for (const q of ['limit=abc', 'limit=1.5', 'limit=0', 'limit=101', 'limit=1&limit=2', 'limit=true']) {
      t.equal((await c.get(`/api/transactions?${q}`)).status, 400, q)
    }
  })

  t.test('text is trimmed before its length is checked, and stored trimmed', async (t) => {
    for (const name of ['', '   ', '\u00a0\u2003', ' \t ']) {
      const res = await c.post('/api/accounts', { name, kind: 'savings' })
      t.equal(res.status, 400, `name ${JSON.stringify(name)}`)
    }
    const padded = await c.post('/api/accounts', { name: `  ${'n'.repeat(100)}  `, kind: 'savings' })
    t.equal(padded.status, 201, '100 characters with spaces around them fit the 100')
    t.equal(padded.body.name, 'n'.repeat(100))
    t.equal((await c.post('/api/accounts', { name: 'n'.repeat(101), kind: 'savings' })).status, 400, '101 do not')
    t.equal((await tx({ category: '   ' })).status, 400, 'a category of spaces')
    const created = await tx({ category: '  Groceries ', description: '  weekly  ' })
    t.equal(created.status, 201)
    t.equal(created.body.category, 'groceries')
    t.equal(created.body.description, 'weekly')
    const signup = await new Client(app).signup('  Spaced@Example.com ', 'long enough password', '  Spaced  ')
    t.equal(signup.status, 201)
    t.equal(signup.body.user.email, 'Spaced@Example.com')
    t.equal(signup.body.user.name, 'Spaced')
    t.equal((await new Client(app).login(' spaced@example.com ', 'long enough password')).status, 200, 'the login email is trimmed too')
    t.equal((await new Client(app).signup('   ', 'long enough password', 'x')).status, 400, 'an email of spaces')
    t.equal((await new Client(app).login('valid@example.com', ' long enough password ')).status, 401, 'passwords are not trimmed')
  })

  t.test('?symbols= with no symbol is a 400, not an outage of the provider', async (t) => {
    for (const q of ['symbols=', 'symbols=,', 'symbols=,,', 'symbols=%20,%20']) {
      const res = await c.get(`/api/quotes?${q}`)
      t.equal(res.status, 400, q)
      t.equal(res.body.code, 'FINANCE_NO_SYMBOLS', q)
    }
    t.equal((await c.get('/api/quotes')).status, 200, 'no symbols parameter: the default five')
    t.equal((await c.get('/api/quotes?symbols=aapl,,MSFT')).status, 200, 'empty entries among real ones are skipped')
  })
})
