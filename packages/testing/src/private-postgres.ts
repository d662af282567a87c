import { execFileSync } from 'node:child_process'
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { freePort } from './ports.js'
import { isAlive, isListening, isRoot, pgBin, run, runSync, sleep, waitFor } from './process.js'
import { guardExit, type TestContext } from './teardown.js'

/** Every private server's files live under a directory with this prefix in the OS temp dir. */
export const PRIVATE_DIR_PREFIX = 'headroom-test-'

export interface PrivatePostgresOptions {
  /** extra postgresql.conf settings, e.g. `{ max_connections: '20' }` */
  settings?: Record<string, string | number>
}

export interface PrivatePostgres {
  readonly host: string
  readonly port: number
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  /** the temp directory holding the data directory, socket and log */
  readonly baseDir: string
  readonly dataDir: string
  /** the postmaster's pid while running, else null */
  pid (): number | null
  /** runs one statement on a short-lived connection */
  query<R extends pg.QueryResultRow = pg.QueryResultRow> (sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>
  /** clean shutdown (`pg_ctl stop -m fast`): disconnects every client */
  stop (): Promise<void>
  /** SIGKILL to the postmaster, as a crash or an OOM kill would do */
  kill (): Promise<void>
  /** starts it again on the same port with the same data */
  start (): Promise<void>
  restart (): Promise<void>
  /** stops it and removes its files; teardown does this for you */
  destroy (): Promise<void>
}

export interface PrivateReplica extends PrivatePostgres {
  readonly primary: PrivatePostgres
  /** resolves once the replica has replayed everything the primary has written so far */
  caughtUp (timeoutMs?: number): Promise<void>
}

const postgresIds = (() => {
  let ids: { uid: number, gid: number } | undefined
  return () => {
    if (!ids) {
      ids = {
        uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
        gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
      }
    }
    return ids
  }
})()

function makeBaseDir (kind: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${PRIVATE_DIR_PREFIX}${kind}-`))
  if (isRoot) {
    const { uid, gid } = postgresIds()
    chownSync(dir, uid, gid)
  }
  return dir
}

const BASE_SETTINGS: Record<string, string | number> = {
  listen_addresses: "'127.0.0.1'",
  wal_level: 'replica',
  max_wal_senders: 10,
  hot_standby: 'on',
  // a throwaway cluster: no need to survive an OS crash (a postgres crash is still safe: WAL reaches the OS)
  fsync: 'off',
  full_page_writes: 'off',
  shared_buffers: "'32MB'",
  max_connections: 100,
  logging_collector: 'off'
}

function confLines (settings: Record<string, string | number>): string {
  return Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n'
}

function createServer (t: TestContext, baseDir: string, port: number, extra: () => Partial<PrivateReplica>): PrivatePostgres {
  const dataDir = join(baseDir, 'data')
  const logFile = join(baseDir, 'postgres.log')
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  let destroyed = false

  const pid = (): number | null => {
    const file = join(dataDir, 'postmaster.pid')
    if (!existsSync(file)) return null
    const value = Number(readFileSync(file, 'utf8').split('\n')[0])
    return Number.isInteger(value) && value > 0 && isAlive(value) ? value : null
  }

  const pgCtl = (args: string[]) => run(pgBin('pg_ctl'), ['-D', dataDir, ...args], { asPostgres: true })

  const server: PrivatePostgres = {
    host: '127.0.0.1',
    port,
    url,
    baseDir,
    dataDir,
    pid,
    async query (sql, params) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
      await client.connect()
      try {
        return await client.query(sql, params)
      } finally {
        await client.end()
      }
    },
    async stop () {
      if (pid() === null) return
      await pgCtl(['-m', 'fast', '-w', '-t', '30', 'stop'])
    },
    async kill () {
      const p = pid()
      if (p === null) return
      process.kill(p, 'SIGKILL')
      // backends notice the postmaster's death and exit; the port and the
      // shared memory are only free once they have
      await waitFor(`postgres ${port} to die`, async () => !isAlive(p) && !(await isListening(port)), 15_000)
    },
    async start () {
      if (pid() !== null) return
      // after a SIGKILL, orphaned backends can hold the old shared memory for
      // a moment; postgres refuses to start until they are gone
      let lastError: unknown
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          await pgCtl(['-l', logFile, '-w', '-t', '30', 'start'])
          return
        } catch (err) {
          lastError = err
          await sleep(250)
        }
      }
      throw lastError
    },
    async restart () {
      await server.stop()
      await server.start()
    },
    async destroy () {
      if (destroyed) return
      destroyed = true
      // the exit guard stays until the directory is gone (see private-redis.ts)
      try {
        const running = pid()
        if (running !== null) {
          await pgCtl(['-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => {})
          await waitFor(`postgres ${port} to exit`, () => !isAlive(running), 15_000).catch(() => {})
        }
      } finally {
        rmSync(baseDir, { recursive: true, force: true })
        unguard()
      }
    },
    ...extra()
  }

  const unguard = guardExit(() => {
    runSync(pgBin('pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { asPostgres: true })
    rmSync(baseDir, { recursive: true, force: true })
  })
  t.teardown(() => server.destroy())
  return server
}

/**
 * A PostgreSQL cluster of its own (initdb + pg_ctl as the `postgres` user) on
 * a free port, trust auth, ready for streaming replicas. The test may stop,
 * kill and restart it; teardown always stops it and removes its files, and so
 * does process exit if the test never reaches teardown.
 */
export async function startPostgres (t: TestContext, options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const baseDir = makeBaseDir('pg')
  const port = await freePort()
  const server = createServer(t, baseDir, port, () => ({}))
  await run(pgBin('initdb'), ['-D', server.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { asPostgres: true })
  appendFileSync(join(server.dataDir, 'postgresql.conf'), confLines({
    ...BASE_SETTINGS,
    port,
    unix_socket_directories: `'${baseDir}'`,
    ...options.settings
  }))
  await server.start()
  return server
}

/**
 * A streaming replica of `primary` (pg_basebackup -R) on its own free port:
 * `pg_is_in_recovery()` is true there and it replays what the primary writes.
 */
export async function startReplica (t: TestContext, primary: PrivatePostgres, options: PrivatePostgresOptions = {}): Promise<PrivateReplica> {
  const baseDir = makeBaseDir('pg-replica')
  const port = await freePort()
  const replica = createServer(t, baseDir, port, () => ({
    primary,
    async caughtUp (timeoutMs = 15_000) {
      const { rows } = await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')
      const target = rows[0]!.lsn
      await waitFor('the replica to catch up', async () => {
        const r = await replica.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [target])
        return r.rows[0]?.ok === true
      }, timeoutMs)
    }
  })) as PrivateReplica
  await run(pgBin('pg_basebackup'), [
    '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres',
    '-D', replica.dataDir, '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync'
  ], { asPostgres: true })
  // the copied postgresql.conf carries the primary's port and socket; later lines win
  appendFileSync(join(replica.dataDir, 'postgresql.conf'), confLines({
    port,
    unix_socket_directories: `'${baseDir}'`,
    ...options.settings
  }))
  await replica.start()
  return replica
}
