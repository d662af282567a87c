import { once } from 'node:events'
import { finished } from 'node:stream/promises'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'
import { hashPassword } from './passwords.js'

/** Every seeded user's password (one hash for all: scrypt per user would take minutes). */
export const SEED_PASSWORD = 'seed-password-123'
export const seedEmail = (id: number | bigint | string) => `user${id}@seed.example`

const FIRST = ['Ada', 'Alan', 'Grace', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Linus', 'Margaret', 'Dennis', 'Hedy', 'Tim', 'Katherine', 'John', 'Sophie', 'Guido', 'Anita', 'Niklaus']
const LAST = ['Lovelace', 'Turing', 'Hopper', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Perlman', 'Torvalds', 'Hamilton', 'Ritchie', 'Lamarr', 'Berners-Lee', 'Johnson', 'Backus', 'Wilson', 'van Rossum', 'Borg', 'Wirth']
/** category, typical cents, spread, relative frequency */
const SPENDING: Array<[string, number, number, number]> = [
  ['groceries', 6500, 0.6, 30], ['dining', 3200, 0.7, 20], ['transport', 2500, 0.8, 15], ['utilities', 11000, 0.3, 5],
  ['rent', 145000, 0.2, 3], ['shopping', 5400, 1.0, 12], ['entertainment', 2800, 0.8, 8], ['health', 7000, 0.9, 4], ['travel', 42000, 0.8, 3]
]
const TOTAL_WEIGHT = SPENDING.reduce((s, c) => s + c[3], 0)

export interface SeedOptions {
  users: number
  /** transactions per user, on average */
  transactionsPerUser?: number
  /** `phase` is `copy` while rows stream, then `commit` (commit and ANALYZE, seconds for large seeds) */
  onProgress?: (done: number, total: number, phase: 'copy' | 'commit') => void
  /** deterministic data for a given seed */
  randomSeed?: number
}

export interface SeedResult { users: number, accounts: number, transactions: number, firstUserId: number, ms: number }

/** mulberry32: fast, seedable, good enough for fake data */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** COPY text format: tab-separated, \N for NULL; our values contain no tabs, newlines or backslashes. */
async function copy (client: pg.ClientBase, table: string, columns: string[], rows: () => Generator<string>): Promise<void> {
  const stream = client.query(copyStreams.from(`COPY ${table} (${columns.join(', ')}) FROM STDIN`))
  let chunk = ''
  for (const row of rows()) {
    chunk += row
    if (chunk.length > 256 * 1024) {
      if (!stream.write(chunk)) await once(stream, 'drain')
      chunk = ''
    }
  }
  stream.end(chunk)
  await finished(stream)
}

/**
 * Adds `users` users, each with one to three accounts and about ten
 * transactions over the last 90 days (a salary, rent, groceries, …), with
 * COPY: one round trip per table instead of one per row. Runs in one
 * transaction holding a lock that blocks other writers, so the ids it
 * assigns cannot collide, and a failed seed leaves nothing behind.
 */
export async function seed (connectionString: string, opts: SeedOptions): Promise<SeedResult> {
  const started = Date.now()
  const perUser = opts.transactionsPerUser ?? 10
  const random = rng(opts.randomSeed ?? 42)
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query('BEGIN')
    await client.query('LOCK TABLE users, accounts, transactions IN SHARE ROW EXCLUSIVE MODE')
    const { rows: [max] } = await client.query<{ u: string, a: string, t: string }>(
      'SELECT (SELECT COALESCE(max(id), 0) FROM users)::text AS u, (SELECT COALESCE(max(id), 0) FROM accounts)::text AS a, (SELECT COALESCE(max(id), 0) FROM transactions)::text AS t')
    const userBase = Number(max!.u)
    let accountId = Number(max!.a)
    let txId = Number(max!.t)
    const hash = await hashPassword(SEED_PASSWORD)
    const now = Date.now()
    const created = new Date(now - 400 * 86_400_000).toISOString()

    // accounts per user decided up front: the accounts and transactions COPYs both need them
    const accounts: Array<{ id: number, user: number, kind: string }> = []
    for (let i = 1; i <= opts.users; i++) {
      const user = userBase + i
      accounts.push({ id: ++accountId, user, kind: 'checking' })
      if (random() < 0.6) accounts.push({ id: ++accountId, user, kind: 'savings' })
      if (random() < 0.3) accounts.push({ id: ++accountId, user, kind: 'brokerage' })
    }

    const total = opts.users * 3
    let done = 0
    const tick = () => { done++; if (done % 1000 === 0 || done === total) opts.onProgress?.(done, total, 'copy') }

    await copy(client, 'users', ['id', 'email', 'name', 'password_hash', 'created_at'], function * () {
      for (let i = 1; i <= opts.users; i++) {
        const id = userBase + i
        const name = `${FIRST[Math.floor(random() * FIRST.length)]} ${LAST[Math.floor(random() * LAST.length)]}`
        yield `${id}\t${seedEmail(id)}\t${name}\t${hash}\t${created}\n`
        tick()
      }
    })
    const names: Record<string, string> = { checking: 'Everyday checking', savings: 'Savings', brokerage: 'Brokerage' }
    await copy(client, 'accounts', ['id', 'user_id', 'name', 'kind', 'created_at'], function * () {
      let lastUser = -1
      for (const a of accounts) {
        yield `${a.id}\t${a.user}\t${names[a.kind]}\t${a.kind}\t${created}\n`
        if (a.user !== lastUser) { lastUser = a.user; tick() }
      }
    })
    let transactions = 0
    await copy(client, 'transactions', ['id', 'user_id', 'account_id', 'amount_cents', 'category', 'description', 'occurred_at'], function * () {
      let i = 0
      while (i < accounts.length) {
        const user = accounts[i]!.user
        const checking = accounts[i]!.id
        let j = i
        while (j < accounts.length && accounts[j]!.user === user) j++
        const savings = accounts.slice(i, j).find((a) => a.kind === 'savings')
        const count = Math.max(3, Math.round(perUser * (0.5 + random())))
        // a salary at the start of each of the last three months
        for (let m = 0; m < 3; m++) {
          const at = new Date(now - (m * 30 + 2) * 86_400_000).toISOString()
          yield `${++txId}\t${user}\t${checking}\t${Math.round(350000 + random() * 300000)}\tsalary\tPayroll\t${at}\n`
          transactions++
        }
        for (let k = 3; k < count; k++) {
          let r = random() * TOTAL_WEIGHT
          let c = SPENDING[0]!
          for (const s of SPENDING) { r -= s[3]; if (r <= 0) { c = s; break } }
          const amount = -Math.max(100, Math.round(c[1] * (1 + (random() - 0.5) * 2 * c[2])))
          const account = savings && c[0] === 'travel' ? savings.id : checking
          const at = new Date(now - Math.floor(random() * 90 * 86_400_000)).toISOString()
          yield `${++txId}\t${user}\t${account}\t${amount}\t${c[0]}\t${c[0]} purchase\t${at}\n`
          transactions++
        }
        tick()
        i = j
      }
    })
    // explicit ids above: move the sequences past them for the app's own inserts
    await client.query(`SELECT setval(pg_get_serial_sequence('users', 'id'), $1), setval(pg_get_serial_sequence('accounts', 'id'), $2),
      setval(pg_get_serial_sequence('transactions', 'id'), $3)`, [Math.max(userBase + opts.users, 1), Math.max(accountId, 1), Math.max(txId, 1)])
    opts.onProgress?.(total, total, 'commit')
    await client.query('COMMIT')
    await client.query('ANALYZE users, accounts, transactions')
    return { users: opts.users, accounts: accounts.length, transactions, firstUserId: userBase + 1, ms: Date.now() - started }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    await client.end()
  }
}
