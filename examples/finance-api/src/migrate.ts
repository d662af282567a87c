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
export async function migrate (connectionString: string, dir: URL = MIGRATIONS_DIR): Promise<string[]> {
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
    const files = await migrationFiles(dir)
    for (const file of files) {
      if (done.has(file)) continue
      const sql = await readFile(new URL(file, dir), 'utf8')
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

/** The migrations this build knows, in the order they apply. */
export async function migrationFiles (dir: URL = MIGRATIONS_DIR): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort()
}

/** A migration's version: the number its file name starts with (`001_init.sql`: 1); 0 for none. */
export function versionOf (files: readonly string[]): number {
  return files.reduce((max, f) => Math.max(max, Number(/^(\d+)/.exec(f)?.[1] ?? 0)), 0)
}

export interface SchemaStatus {
  /** the highest version this build knows */
  needed: number
  /** the highest version the database records */
  current: number
  /** migrations of this build the database has not applied: the server refuses to serve */
  missing: string[]
  /** migrations the database has that this build does not know (a newer build ran): served, with a warning */
  unknown: string[]
}

/**
 * Compares the database's schema_migrations with this build's files, reading
 * only (an instance that does not migrate at start needs no DDL rights).
 */
export async function schemaStatus (connectionString: string, dir: URL = MIGRATIONS_DIR): Promise<SchemaStatus> {
  const files = await migrationFiles(dir)
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 })
  await client.connect()
  let applied: string[]
  try {
    const exists = await client.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS e")
    applied = exists.rows[0].e ? (await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name) : []
  } finally {
    await client.end()
  }
  const done = new Set(applied)
  const known = new Set(files)
  return {
    needed: versionOf(files),
    current: versionOf(applied),
    missing: files.filter((f) => !done.has(f)),
    unknown: applied.filter((f) => !known.has(f)).sort()
  }
}

/** The database is older than this build: the one line the server exits with. */
export class SchemaTooOldError extends Error {
  constructor (status: SchemaStatus) {
    super(`database schema is at version ${status.current}, this build needs ${status.needed} (missing ${status.missing.join(', ')}): run the migrations first (pnpm --filter finance-api migrate, or node deploy/migrate.mjs in the image), or set MIGRATE_ON_START=true`)
    this.name = 'SchemaTooOldError'
  }
}
