/**
 * The compose stack's PostgreSQL scripts, run for real on private clusters
 * (never the shared 5432): primary-init.sh on a primary whose pg_hba is the
 * official image's (password auth over TCP), then replica-entrypoint.sh as
 * the `postgres` user on an empty data directory, which must produce a
 * streaming replica that authenticated as `replicator` with its password.
 */
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, guardExit, PRIVATE_DIR_PREFIX, startPostgres, waitFor } from '@headroom/testing'
import pg from 'pg'
import t from 'tap'
import { migrate } from '../src/migrate.js'
import { DEPLOY_DIR } from './deploy-files.js'

const isRoot = process.getuid?.() === 0

function run (file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number, stdout: string, stderr: string }> {
  // PostgreSQL refuses to run as root: the replica's script runs as `postgres`, as in the image
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), file, ...args]] : [file, args]
  return new Promise((resolve) => {
    execFile(cmd, argv, { env: isRoot ? { PATH: process.env.PATH } : env, timeout: timeoutMs, cwd: tmpdir() }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr: stderr + (err && typeof err.code !== 'number' ? String(err) : '') })
    })
  })
}

function pgBinDir (): string {
  const versions = ['17', '16', '15', '14'].filter((v) => { try { readFileSync(`/usr/lib/postgresql/${v}/bin/pg_ctl`); return true } catch { return false } })
  if (versions.length === 0) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql')
  return `/usr/lib/postgresql/${versions[0]}/bin`
}

t.test('primary-init.sh and replica-entrypoint.sh make a password-authenticated streaming replica', async (t) => {
  const primary = await startPostgres(t)
  // the image creates POSTGRES_DB before the init scripts
  await primary.query('CREATE DATABASE finance')
  // the official image's pg_hba when POSTGRES_PASSWORD is set (trust on the
  // socket, passwords over TCP), plus a first line for this test's superuser
  writeFileSync(join(primary.dataDir, 'pg_hba.conf'),
    'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all all scram-sha-256\n')
  await primary.query('SELECT pg_reload_conf()')

  const dir = mkdtempSync(join(tmpdir(), `${PRIVATE_DIR_PREFIX}deploy-pg-`))
  const unguard = guardExit(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  const appPassword = 'app-password-' + Math.random().toString(36).slice(2)
  const replicationPassword = 'replication-password-' + Math.random().toString(36).slice(2)
  writeFileSync(join(dir, 'finance_db_password'), appPassword + '\n', { mode: 0o644 })
  writeFileSync(join(dir, 'replication_password'), replicationPassword + '\n', { mode: 0o644 })

  // 1. primary-init.sh, as the image runs it (psql over the socket to the init server)
  const init = await run('bash', [join(DEPLOY_DIR, 'postgres/primary-init.sh')], {
    PATH: process.env.PATH,
    POSTGRES_USER: 'postgres',
    POSTGRES_DB: 'finance',
    PGDATA: primary.dataDir,
    PGHOST: primary.baseDir,
    PGPORT: String(primary.port),
    FINANCE_DB_PASSWORD_FILE: join(dir, 'finance_db_password'),
    REPLICATION_PASSWORD_FILE: join(dir, 'replication_password')
  })
  t.equal(init.code, 0, 'primary-init.sh succeeds')
  if (init.code !== 0) t.comment(init.stderr)
  t.match(readFileSync(join(primary.dataDir, 'pg_hba.conf'), 'utf8'), /^host replication replicator all scram-sha-256$/m)
  await primary.query('SELECT pg_reload_conf()')

  // the app's role logs in with its password, owns its database, and can migrate it
  const appUrl = `postgres://finance:${encodeURIComponent(appPassword)}@127.0.0.1:${primary.port}/finance`
  t.same(await migrate(appUrl), ['001_init.sql'], 'the finance role runs the migrations')
  const wrong = new pg.Client({ connectionString: `postgres://finance:wrong@127.0.0.1:${primary.port}/finance` })
  await t.rejects(wrong.connect(), /password authentication failed/, 'passwords are checked over TCP')

  // 2. replica-entrypoint.sh on an empty data directory, the image's entrypoint stubbed
  const data = join(dir, 'replica')
  const bin = join(dir, 'bin')
  mkdirSync(data, { mode: 0o700 })
  mkdirSync(bin, { mode: 0o755 })
  const stubLog = join(dir, 'entrypoint-args')
  writeFileSync(join(bin, 'docker-entrypoint.sh'), `#!/bin/sh\necho "$@" > ${stubLog}\n`, { mode: 0o755 })
  if (isRoot) {
    // the replica container runs as `postgres` (compose: user: postgres)
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    chownSync(dir, uid, gid)
    chownSync(data, uid, gid)
  }
  const replicaEnv = {
    PATH: `${bin}:${process.env.PATH}`,
    PGDATA: data,
    PRIMARY_HOST: '127.0.0.1',
    PRIMARY_PORT: String(primary.port),
    REPLICATION_PASSWORD_FILE: join(dir, 'replication_password')
  }
  const first = await run('bash', [join(DEPLOY_DIR, 'postgres/replica-entrypoint.sh')], replicaEnv, 120_000)
  t.equal(first.code, 0, 'replica-entrypoint.sh succeeds')
  if (first.code !== 0) t.comment(first.stderr)
  t.equal(readFileSync(stubLog, 'utf8').trim(), 'postgres -c hot_standby=on -c max_connections=200', 'then hands over to the image\'s entrypoint')
  t.match(readFileSync(join(data, 'postgresql.auto.conf'), 'utf8'), /primary_conninfo = '.*user=replicator/, 'pg_basebackup -R wrote the connection to the primary')

  // 3. start what it made, as the image's entrypoint would: a hot standby that streams
  const port = await freePort()
  const pgCtl = (args: string[]) => run(join(pgBinDir(), 'pg_ctl'), ['-D', data, ...args], { PATH: process.env.PATH })
  const started = await pgCtl(['-l', join(dir, 'replica.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c hot_standby=on`, 'start'])
  t.teardown(async () => {
    await pgCtl(['-m', 'immediate', '-w', 'stop'])
    unguard()
    rmSync(dir, { recursive: true, force: true })
  })
  t.equal(started.code, 0, 'the replica starts')
  if (started.code !== 0) t.comment(started.stdout + started.stderr + readFileSync(join(dir, 'replica.log'), 'utf8'))
  const replica = new pg.Client({ connectionString: `postgres://finance:${encodeURIComponent(appPassword)}@127.0.0.1:${port}/finance` })
  await replica.connect()
  t.teardown(() => replica.end())
  t.equal((await replica.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, true, 'a standby')
  const writer = new pg.Client({ connectionString: appUrl })
  await writer.connect()
  t.teardown(() => writer.end())
  await writer.query("INSERT INTO users (email, name, password_hash) VALUES ('replica@example.com', 'R', 'x')")
  await waitFor('the write to reach the replica', async () =>
    (await replica.query("SELECT 1 FROM users WHERE email = 'replica@example.com'")).rowCount === 1, 30_000, 100)
  t.pass('a write on the primary is read on the replica')
  const senders = await primary.query<{ usename: string }>('SELECT usename FROM pg_stat_replication')
  t.same(senders.rows.map((r) => r.usename), ['replicator'], 'streaming as replicator')

  // 4. a volume that already holds a replica restarts as one: no second base backup
  const again = await run('bash', [join(DEPLOY_DIR, 'postgres/replica-entrypoint.sh')], { ...replicaEnv, PRIMARY_HOST: '192.0.2.1' }, 10_000)
  t.equal(again.code, 0, 'a second start goes straight to the entrypoint (the primary is not even contacted)')
})
