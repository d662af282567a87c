import pg from 'pg'

/**
 * The finance example's summary read (balances per account and the last 30
 * days by category, one round trip) over a schema shaped like its seed:
 * `USERS` users, 1–3 accounts each, about 10 transactions per user over 90
 * days, the example's indexes. Each run gets a schema of its own.
 */
export const USERS = 20_000

/** a copy of `SUMMARY_SQL` in examples/finance-api/src/repo.ts (the package cannot import the example); examples/finance-api/test/summary-sql.test.ts fails when they differ */
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

const SCHEMA_SQL = [
  'CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL)',
  `CREATE TABLE accounts (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), name text NOT NULL,
     kind text NOT NULL, currency text NOT NULL DEFAULT 'EUR')`,
  'CREATE INDEX accounts_user_idx ON accounts (user_id)',
  `CREATE TABLE transactions (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id),
     account_id bigint NOT NULL REFERENCES accounts (id), amount_cents bigint NOT NULL, category text NOT NULL,
     description text NOT NULL, occurred_at timestamptz NOT NULL)`,
  'CREATE INDEX transactions_user_time_idx ON transactions (user_id, occurred_at DESC, id DESC)',
  'CREATE INDEX transactions_account_idx ON transactions (account_id)',
  `INSERT INTO users (email, name) SELECT 'user' || i || '@example.com', 'User ' || i FROM generate_series(1, ${USERS}) i`,
  `INSERT INTO accounts (user_id, name, kind) SELECT u, 'Account ' || k, (ARRAY['checking', 'savings', 'credit'])[k]
     FROM generate_series(1, ${USERS}) u, generate_series(1, 1 + u % 3) k`,
  `INSERT INTO transactions (user_id, account_id, amount_cents, category, description, occurred_at)
     SELECT a.user_id, a.id, CASE WHEN n % 5 = 0 THEN 250000 ELSE -(100 + (a.id * n) % 9000) END,
            (ARRAY['groceries', 'rent', 'transport', 'dining', 'salary', 'utilities'])[1 + (a.id + n) % 6],
            'transaction ' || n, now() - ((a.id * 7 + n * 13) % 90) * interval '1 day'
     FROM accounts a, generate_series(1, 5) n`,
  'ANALYZE'
]

export interface SummaryData {
  /** pg client options that put every connection in the run's schema */
  config: pg.ClientConfig
  drop: () => Promise<void>
}

export async function summaryData (databaseUrl: string): Promise<SummaryData> {
  const schema = `bench_prepared_${process.pid}_${Date.now()}`
  const admin = new pg.Client({ connectionString: databaseUrl, options: `-c search_path=${schema}` })
  await admin.connect()
  try {
    await admin.query(`CREATE SCHEMA ${schema}`)
    for (const sql of SCHEMA_SQL) await admin.query(sql)
  } finally {
    await admin.end()
  }
  return {
    config: { connectionString: databaseUrl, options: `-c search_path=${schema}` },
    async drop () {
      const c = new pg.Client({ connectionString: databaseUrl })
      await c.connect()
      try { await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`) } finally { await c.end() }
    }
  }
}
