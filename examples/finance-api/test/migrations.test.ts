import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { isolatedSchema } from '@headroom/testing'
import pg from 'pg'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { migrate, migrationFiles, MIGRATIONS_DIR, versionOf } from '../src/migrate.js'
import { build, DIST_SERVER, EXAMPLE_DIR, run, runServer } from './dist-server.js'

const NO_MIGRATE = { MIGRATE_ON_START: 'false' }

async function sql (url: string, text: string) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text)).rows
  } finally {
    await client.end()
  }
}

t.before(build)

t.test('MIGRATE_ON_START: on for the embedded database, off with DATABASE_URL, either way when set', async (t) => {
  t.equal(loadConfig({}).migrateOnStart, true, 'embedded: nothing else would migrate it')
  t.equal(loadConfig({ DATABASE_URL: 'postgres://db/x' }).migrateOnStart, false, 'a real server: a step of its own')
  t.equal(loadConfig({ DATABASE_URL: 'postgres://db/x', MIGRATE_ON_START: 'true' }).migrateOnStart, true)
  t.throws(() => loadConfig({ MIGRATE_ON_START: 'yes' }), /MIGRATE_ON_START must be true or false \(got "yes"\)/)
})

t.test('a database one migration behind: the server refuses with one line naming both versions, exit 1', async (t) => {
  const { url } = await isolatedSchema(t)
  // this build's migrations but the last: the schema of the previous release
  const files = await migrationFiles()
  const previous = mkdtempSync(join(tmpdir(), 'finance-migrations-'))
  t.teardown(() => rmSync(previous, { recursive: true, force: true }))
  for (const f of files.slice(0, -1)) copyFileSync(new URL(f, MIGRATIONS_DIR), join(previous, f))
  await migrate(url, pathToFileURL(`${previous}/`))
  const needed = versionOf(files)
  const behind = versionOf(files.slice(0, -1))

  const refused = await run(process.execPath, [DIST_SERVER], { env: { PATH: process.env.PATH ?? '', PORT: '0', DATABASE_URL: url, ...NO_MIGRATE }, timeout: 60_000 })
    .then(() => undefined, (err: { code: number, stdout: string, stderr: string }) => err)
  t.ok(refused, 'it exits')
  t.equal(refused?.code, 1, 'non-zero')
  t.equal(refused?.stdout, '', 'without listening or logging anything else')
  const lines = refused?.stderr.trim().split('\n') ?? []
  t.equal(lines.length, 1, `one line: ${refused?.stderr}`)
  t.match(lines[0], `database schema is at version ${behind}, this build needs ${needed} (missing ${files.at(-1)})`)
  t.match(lines[0], 'pnpm --filter finance-api migrate')
})

t.test('pnpm --filter finance-api migrate, then an instance that does not migrate starts on the up-to-date schema', async (t) => {
  const { url } = await isolatedSchema(t)
  const migrated = await run('pnpm', ['--filter', 'finance-api', 'migrate'], { cwd: EXAMPLE_DIR, env: { ...process.env, DATABASE_URL: url }, timeout: 120_000 })
  t.match(migrated.stdout, /"msg":"migrations applied","applied":\["001_init.sql"/)
  const server = await runServer(t, DIST_SERVER, { DATABASE_URL: url, ...NO_MIGRATE })
  t.equal((await fetch(`${server.url}/health/ready`)).status, 200)
  t.match(server.output(), `"schemaVersion":${versionOf(await migrationFiles())}`)
  t.match(server.output(), 'up to date')
  t.notMatch(server.output(), /migrations applied/, 'it did not migrate')
  t.equal(await server.stop(), 0)
})

t.test('a database newer than this build (a migration it does not know): serves, with a warning', async (t) => {
  const { url } = await isolatedSchema(t)
  await migrate(url)
  await sql(url, "INSERT INTO schema_migrations (name) VALUES ('999_from_a_newer_build.sql')")
  const server = await runServer(t, DIST_SERVER, { DATABASE_URL: url, ...NO_MIGRATE })
  t.equal((await fetch(`${server.url}/health/ready`)).status, 200, 'serves')
  const warning = server.output().split('\n').find((l) => l.includes('newer than this build'))
  t.ok(warning, 'and says so')
  t.match(JSON.parse(warning ?? '{}'), { level: 40, msg: /version 999, newer than this build's \d+ \(unknown migrations: 999_from_a_newer_build.sql\)/ })
  t.equal(await server.stop(), 0)
})
