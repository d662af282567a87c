import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startPostgres, uniqueId, type PrivatePostgres } from '@headroom/testing'
import t, { type Test } from 'tap'
import { DATABASE_CONNECT_TIMEOUT_MS } from '../src/database-check.js'
import { build, DIST_SERVER } from './dist-server.js'

/**
 * The production start (`node dist/server.js`) with a DATABASE_URL it cannot
 * use: it exits 1 with one line on stderr naming DATABASE_URL and what is
 * wrong, no stack trace, no password; within the connect timeout (10 s)
 * plus generous slack for a loaded machine. It does not wait and retry
 * (the README says why: the orchestrator's restart is the retry).
 */

/** node's start and the imports (40 s and more at load 24), plus the connect timeout: against a hang or a wait-and-retry, not a speed test */
const EXIT_BOUND_MS = DATABASE_CONNECT_TIMEOUT_MS + 60_000
const PASSWORD = 'not-to-be-printed-4711'

async function startFails (t: Test, databaseUrl: string) {
  const cwd = mkdtempSync(join(tmpdir(), 'finance-api-cwd-'))
  const started = performance.now()
  const child = spawn(process.execPath, ['--enable-source-maps', DIST_SERVER], {
    cwd,
    // REDIS_URL too: the database is checked first, whatever else is configured
    env: { PATH: process.env.PATH ?? '', PORT: '0', NODE_ENV: 'production', DATABASE_URL: databaseUrl, REDIS_URL: 'redis://127.0.0.1:1', SESSION_SECRET: 'start-database-down-test-secret-0123456789' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => { stdout += d })
  child.stderr.on('data', (d) => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_BOUND_MS + 10_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  clearTimeout(timer)
  rmSync(cwd, { recursive: true, force: true })
  const ms = performance.now() - started
  t.equal(code, 1, 'exits 1 (an orchestrator restarts it with back-off)')
  t.ok(ms < EXIT_BOUND_MS, `within ${EXIT_BOUND_MS} ms (${Math.round(ms)} ms)`)
  const lines = stderr.split('\n').filter(Boolean)
  t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(stderr)}`)
  t.match(lines[0], /^DATABASE_URL: cannot use the database: /, 'naming the variable')
  t.notMatch(stderr + stdout, /\n\s+at /, 'no stack trace')
  t.notMatch(stderr + stdout, PASSWORD, 'never the password')
  t.notMatch(stdout, /Server listening/)
  return lines[0] ?? ''
}

const withPassword = (server: PrivatePostgres, db: string) => `postgres://postgres:${PASSWORD}@127.0.0.1:${server.port}/${db}`

t.before(build)

t.test('a database name that does not exist', async (t) => {
  const server = await startPostgres(t)
  const name = uniqueId('nodb')
  const line = await startFails(t, withPassword(server, name))
  t.match(line, `the database "${name}" does not exist on 127.0.0.1:${server.port}`)
})

t.test('PostgreSQL down (connection refused)', async (t) => {
  const server = await startPostgres(t)
  await server.stop()
  const line = await startFails(t, withPassword(server, 'postgres'))
  t.match(line, `nothing accepts connections at 127.0.0.1:${server.port} (connection refused)`)
})

t.test('PostgreSQL frozen (accepts the connection, never answers): the connect timeout ends it', async (t) => {
  const server = await startPostgres(t)
  const pid = server.pid()
  if (pid === null) throw new Error('postgres is not running')
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  const line = await startFails(t, withPassword(server, 'postgres'))
  process.kill(pid, 'SIGCONT')
  t.match(line, `no answer from 127.0.0.1:${server.port} within ${DATABASE_CONNECT_TIMEOUT_MS} ms`)
})

t.test('a host name that does not resolve', async (t) => {
  const line = await startFails(t, `postgres://postgres:${PASSWORD}@no-such-host.invalid:5432/test`)
  t.match(line, 'the host "no-such-host.invalid" is not found')
})
