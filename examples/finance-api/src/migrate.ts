import { readdir, readFile } from 'node:fs/promises'
import pg from 'pg'

/** Where the .sql files are, next to src/ and dist/ alike. */
export const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url)

/** An arbitrary constant: every instance of this app takes the same advisory lock. */
const LOCK_KEY = 727_274_001

/**
 * Applies every migrations/*.sql not yet recorded in schema_migrations, in
 * name order, each in its own transaction. Several instances starting at
 * once serialise on an advisory lock, so each file runs exactly once; the
 * files are idempotent anyway (IF NOT EXISTS) so a half-recorded run heals.
 * Uses a connection of its own, before the app's pool exists.
 */
export async function migrate (connectionString: string): Promise<string[]> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 })
  await client.connect()
  const applied: string[] = []
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY])
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name))
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort()
    for (const file of files) {
      if (done.has(file)) continue
      const sql = await readFile(new URL(file, MIGRATIONS_DIR), 'utf8')
      await client.query('BEGIN')
      try {
        await client.query(sql)
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1) ON CONFLICT DO NOTHING', [file])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK')
        throw new Error(`migration ${file} failed: ${(err as Error).message}`, { cause: err })
      }
      applied.push(file)
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {})
    await client.end()
  }
  return applied
}
