import type { Db, QueryOptions, Queryable } from './db.js'
import type { InsightInput } from './insights.js'
import { checkPgTimestamp } from './schemas.js'

export interface User { id: string, email: string, name: string, createdAt: string }
export interface Account { id: string, name: string, kind: AccountKind, currency: string }
export type AccountKind = 'checking' | 'savings' | 'brokerage' | 'credit'
export const ACCOUNT_KINDS: AccountKind[] = ['checking', 'savings', 'brokerage', 'credit']

export interface Transaction {
  id: string
  accountId: string
  amountCents: number
  category: string
  description: string
  occurredAt: string
}

export interface Summary {
  accounts: Array<Account & { balanceCents: number, transactions: number }>
  netWorthCents: number
  last30Days: { incomeCents: number, spentCents: number, byCategory: Array<{ category: string, spentCents: number }> }
}

/** Unique violation on users.email. */
export class EmailTakenError extends Error {}

/**
 * The reads every page load repeats (summary, transaction list, accounts, the
 * user, login's lookup, insights, trends) run as named prepared statements:
 * parsed and planned once per connection instead of on every call. The
 * summary's plan alone cost about 0.5 ms of PostgreSQL CPU per request
 * (packages/pool/README.md). Writes and transactions stay unnamed.
 */
const PREPARED: QueryOptions = { prepare: true }

const USER_COLUMNS = 'id::text AS id, email, name, created_at AS "createdAt"'
const TX_COLUMNS = `id::text AS id, account_id::text AS "accountId", amount_cents::float8 AS "amountCents",
  category, description, occurred_at AS "occurredAt", occurred_at::text AS cursor_ts`

export async function createUser (db: Db, input: { email: string, name: string, passwordHash: string }): Promise<User> {
  try {
    return await db.transaction(async (tx) => {
      const { rows } = await tx.query<User>(
        `INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING ${USER_COLUMNS}`,
        [input.email, input.name, input.passwordHash])
      const user = rows[0]!
      await tx.query('INSERT INTO accounts (user_id, name, kind) VALUES ($1, $2, $3)', [user.id, 'Everyday checking', 'checking'])
      return user
    })
  } catch (err) {
    if ((err as { sqlState?: string }).sqlState === '23505') throw new EmailTakenError()
    throw err
  }
}

/** Login reads the primary: a user who just signed up must be able to log in at once. */
export async function findCredentials (db: Db, email: string): Promise<(User & { passwordHash: string }) | undefined> {
  const { rows } = await db.query<User & { passwordHash: string }>(
    `SELECT ${USER_COLUMNS}, password_hash AS "passwordHash" FROM users WHERE lower(email) = lower($1)`, [email], PREPARED)
  return rows[0]
}

export async function findUser (db: Db, id: string): Promise<User | undefined> {
  const { rows } = await db.read<User>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id], PREPARED)
  return rows[0]
}

export async function listAccounts (db: Db, userId: string): Promise<Account[]> {
  const { rows } = await db.read<Account>(
    'SELECT id::text AS id, name, kind, currency FROM accounts WHERE user_id = $1 ORDER BY id', [userId], PREPARED)
  return rows
}

export async function createAccount (db: Queryable, userId: string, input: { name: string, kind: AccountKind }): Promise<Account> {
  const { rows } = await db.query<Account>(
    'INSERT INTO accounts (user_id, name, kind) VALUES ($1, $2, $3) RETURNING id::text AS id, name, kind, currency',
    [userId, input.name, input.kind])
  return rows[0]!
}

/** undefined when the account is not the user's: the insert selects it by both ids. */
export async function createTransaction (db: Queryable, userId: string, input: {
  accountId: string, amountCents: number, category: string, description: string, occurredAt: string
}): Promise<Transaction | undefined> {
  const { rows } = await db.query<Transaction & { cursor_ts?: string }>(
    `INSERT INTO transactions (user_id, account_id, amount_cents, category, description, occurred_at)
     SELECT a.user_id, a.id, $3, $4, $5, $6 FROM accounts a WHERE a.id = $2 AND a.user_id = $1
     RETURNING ${TX_COLUMNS}`,
    [userId, input.accountId, input.amountCents, input.category, input.description, input.occurredAt])
  const row = rows[0]
  if (row) delete row.cursor_ts
  return row
}

/** What PATCH may change; an omitted field keeps its value. */
export interface TransactionChange { amountCents?: number | undefined, category?: string | undefined, description?: string | undefined, occurredAt?: string | undefined }

/** undefined when the transaction is not the user's: the update selects it by both ids. */
export async function updateTransaction (db: Queryable, userId: string, id: string, change: TransactionChange): Promise<Transaction | undefined> {
  const { rows } = await db.query<Transaction & { cursor_ts?: string }>(
    `UPDATE transactions SET amount_cents = COALESCE($3, amount_cents), category = COALESCE($4, category),
       description = COALESCE($5, description), occurred_at = COALESCE($6::timestamptz, occurred_at)
     WHERE id = $2 AND user_id = $1 RETURNING ${TX_COLUMNS}`,
    [userId, id, change.amountCents ?? null, change.category ?? null, change.description ?? null, change.occurredAt ?? null])
  const row = rows[0]
  if (row) delete row.cursor_ts
  return row
}

/** A keyset cursor: the last row's (occurred_at, id), as PostgreSQL printed them so the comparison is exact. */
export interface Cursor { ts: string, id: string }

export function encodeCursor (c: Cursor): string {
  return Buffer.from(JSON.stringify([c.ts, c.id])).toString('base64url')
}

/** base64url without padding, as `encodeCursor` writes it (Buffer.from would skip any other character) */
const BASE64URL = /^[A-Za-z0-9_-]+$/

/**
 * The cursor, or undefined for anything `encodeCursor` cannot have written:
 * bad base64url, JSON of another shape, an id beyond bigint or a timestamp
 * PostgreSQL would refuse (February 30th, year 0, offset +23:59). Nothing a
 * client puts in a cursor reaches PostgreSQL as an error.
 */
export function decodeCursor (s: string): Cursor | undefined {
  if (!BASE64URL.test(s)) return undefined
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' &&
      /^\d{1,18}$/.test(v[1]) && checkPgTimestamp(v[0])) {
      return { ts: v[0], id: v[1] }
    }
  } catch { /* not JSON */ }
  return undefined
}

/**
 * Newest first, `limit` rows after the cursor. Keyset, not OFFSET: page 1,000
 * costs what page 1 costs, and rows inserted meanwhile never shift a page.
 */
export async function listTransactions (db: Db, userId: string, page: { limit: number, cursor?: Cursor | undefined }): Promise<{ items: Transaction[], next: string | null }> {
  const params: unknown[] = [userId, page.limit + 1]
  let where = 'user_id = $1'
  if (page.cursor) {
    params.push(page.cursor.ts, page.cursor.id)
    where += ' AND (occurred_at, id) < ($3::timestamptz, $4::bigint)'
  }
  const { rows } = await db.read<Transaction & { cursor_ts?: string }>(
    `SELECT ${TX_COLUMNS} FROM transactions WHERE ${where} ORDER BY occurred_at DESC, id DESC LIMIT $2`, params, PREPARED)
  const more = rows.length > page.limit
  const items = rows.slice(0, page.limit)
  const last = items.at(-1)
  const next = more && last ? encodeCursor({ ts: last.cursor_ts!, id: last.id }) : null
  for (const item of items) delete item.cursor_ts
  return { items, next }
}

/**
 * The summary statement. packages/pool/bench/summary-data.ts holds a copy
 * (the package cannot import the example); test/summary-sql.test.ts fails
 * when the two differ.
 */
export const SUMMARY_SQL = `WITH acc AS (
  SELECT a.id::text AS id, a.name, a.kind, a.currency,
         COALESCE(SUM(t.amount_cents), 0)::float8 AS "balanceCents", COUNT(t.id)::int AS transactions
  FROM accounts a LEFT JOIN transactions t ON t.account_id = a.id
  WHERE a.user_id = $1 GROUP BY a.id ORDER BY a.id
), recent AS (
  SELECT category, amount_cents FROM transactions
  WHERE user_id = $1 AND occurred_at >= now() - interval '30 days'
), cat AS (
  SELECT category, (-SUM(amount_cents))::float8 AS "spentCents" FROM recent
  WHERE amount_cents < 0 GROUP BY category ORDER BY 2 DESC LIMIT 10
)
SELECT (SELECT json_agg(acc) FROM acc) AS accounts,
       (SELECT json_agg(cat) FROM cat) AS categories,
       (SELECT COALESCE(SUM(amount_cents) FILTER (WHERE amount_cents > 0), 0)::float8 FROM recent) AS income,
       (SELECT COALESCE(-SUM(amount_cents) FILTER (WHERE amount_cents < 0), 0)::float8 FROM recent) AS spent`

/** One round trip: balances per account, and the last 30 days' income, spending and categories. */
export async function portfolioSummary (db: Db, userId: string): Promise<Summary> {
  const { rows } = await db.read<{ accounts: Summary['accounts'] | null, categories: Summary['last30Days']['byCategory'] | null, income: number, spent: number }>(
    SUMMARY_SQL, [userId], PREPARED)
  const row = rows[0]!
  const accounts = row.accounts ?? []
  return {
    accounts,
    netWorthCents: accounts.reduce((sum, a) => sum + a.balanceCents, 0),
    last30Days: { incomeCents: row.income, spentCents: row.spent, byCategory: row.categories ?? [] }
  }
}

/** What the insights model looks at: the last 30 days against the 30 before. */
export async function insightInput (db: Db, userId: string): Promise<InsightInput> {
  const { rows } = await db.read<{ current: InsightInput['current'] | null, previous: InsightInput['previous'] | null, income: number, spent: number, n: number }>(
    `WITH recent AS (
       SELECT category, amount_cents, occurred_at >= now() - interval '30 days' AS current
       FROM transactions WHERE user_id = $1 AND occurred_at >= now() - interval '60 days'
     ), cat AS (
       SELECT current, category, (-SUM(amount_cents))::float8 AS "spentCents" FROM recent
       WHERE amount_cents < 0 GROUP BY current, category
     )
     SELECT (SELECT json_agg(json_build_object('category', category, 'spentCents', "spentCents") ORDER BY "spentCents" DESC) FROM cat WHERE current) AS current,
            (SELECT json_agg(json_build_object('category', category, 'spentCents', "spentCents") ORDER BY "spentCents" DESC) FROM cat WHERE NOT current) AS previous,
            (SELECT COALESCE(SUM(amount_cents) FILTER (WHERE amount_cents > 0 AND current), 0)::float8 FROM recent) AS income,
            (SELECT COALESCE(-SUM(amount_cents) FILTER (WHERE amount_cents < 0 AND current), 0)::float8 FROM recent) AS spent,
            (SELECT count(*)::int FROM recent) AS n`,
    [userId], PREPARED)
  const row = rows[0]!
  return { current: row.current ?? [], previous: row.previous ?? [], incomeCents: row.income, spentCents: row.spent, transactions: row.n }
}

export interface Trends {
  days: number
  /** spending (negative amounts, as positive cents) per category over the period, largest first, at most 10 */
  byCategory: Array<{ category: string, spentCents: number }>
  /** the balance of all accounts at the end of each UTC day of the period, oldest first */
  balance: Array<{ date: string, balanceCents: number }>
}

/**
 * The dashboard's charts for the last `days` UTC days, today included, in one
 * round trip. Transactions dated after today (a client may send any date up
 * to 9999) are in neither series: a chart of the past.
 */
export async function trends (db: Db, userId: string, days: number): Promise<Trends> {
  const { rows } = await db.read<{ categories: Trends['byCategory'] | null, balance: Trends['balance'] | null }>(
    `WITH span AS (
       SELECT (now() AT TIME ZONE 'UTC')::date - ($2::int - 1) AS first, (now() AT TIME ZONE 'UTC')::date + 1 AS after
     ), bounds AS (
       SELECT first, after, first::timestamp AT TIME ZONE 'UTC' AS t0, after::timestamp AT TIME ZONE 'UTC' AS t1 FROM span
     ), period AS (
       SELECT category, amount_cents, (occurred_at AT TIME ZONE 'UTC')::date AS d FROM transactions, bounds
       WHERE user_id = $1 AND occurred_at >= t0 AND occurred_at < t1
     ), opening AS (
       SELECT COALESCE(SUM(amount_cents), 0) AS s FROM transactions, bounds WHERE user_id = $1 AND occurred_at < t0
     ), daily AS (
       SELECT d, SUM(amount_cents) AS s FROM period GROUP BY d
     ), series AS (
       SELECT g::date AS d FROM bounds, generate_series(first, after - 1, interval '1 day') AS g
     ), cat AS (
       SELECT category, (-SUM(amount_cents))::float8 AS "spentCents" FROM period
       WHERE amount_cents < 0 GROUP BY category ORDER BY 2 DESC, 1 LIMIT 10
     ), bal AS (
       SELECT series.d::text AS date,
              ((SELECT s FROM opening) + SUM(COALESCE(daily.s, 0)) OVER (ORDER BY series.d))::float8 AS "balanceCents"
       FROM series LEFT JOIN daily ON daily.d = series.d
     )
     SELECT (SELECT json_agg(cat ORDER BY "spentCents" DESC, category) FROM cat) AS categories,
            (SELECT json_agg(bal ORDER BY date) FROM bal) AS balance`,
    [userId, days], PREPARED)
  const row = rows[0]!
  return { days, byCategory: row.categories ?? [], balance: row.balance ?? [] }
}
