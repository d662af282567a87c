import { spawn, execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { isolatedSchema, type TestContext } from '@headroom/testing'
import type { Test } from 'tap'
import pg from 'pg'
import t from 'tap'

const run = promisify(execFile)
const EXAMPLE_DIR = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(EXAMPLE_DIR, 'package.json'), 'utf8'))

/**
 * `node dist/server.js` as production runs it: compiled JavaScript, no tsx,
 * started from a directory that is not the example's (a container's WORKDIR
 * need not be), so the migrations and static files must be found next to
 * the compiled file. SIGTERM ends it through the drain.
 */
async function runServer (t: TestContext, entry: string, env: Record<string, string>) {
  const cwd = mkdtempSync(join(tmpdir(), 'finance-api-cwd-'))
  const child = spawn(process.execPath, ['--enable-source-maps', entry], {
    cwd,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL')
    await exited
    rmSync(cwd, { recursive: true, force: true })
  })
  let output = ''
  child.stderr.on('data', (d) => { output += d })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "Server listening" within 60 s:\n${output}`)), 60_000)
    child.stdout.on('data', (d) => {
      output += d
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (m) {
        clearTimeout(timer)
        resolve(m[1] as string)
      }
    })
    child.once('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${output}`)))
  })
  return {
    url,
    async stop () {
      child.kill('SIGTERM')
      return exited
    }
  }
}

async function servesFromMigratedDatabase (t: Test, entry: string) {
  const { url: databaseUrl } = await isolatedSchema(t)
  const server = await runServer(t, entry, { DATABASE_URL: databaseUrl })
  const ready = await fetch(`${server.url}/health/ready`)
  t.equal(ready.status, 200, 'ready')
  t.equal((await fetch(`${server.url}/`)).status, 200, 'the dashboard page is found too')
  const signup = await fetch(`${server.url}/api/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'prod@example.com', password: 'long enough password', name: 'Prod' })
  })
  t.equal(signup.status, 201, 'the migrated schema serves a signup')
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const applied = (await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name)
  await client.end()
  t.ok(applied.includes('001_init.sql'), 'migrations found relative to the compiled file, not the working directory')
  t.equal(await server.stop(), 0, 'SIGTERM: drained and exited 0')
}

// once per file, incremental: a no-op when the workspace build is current
let built: Promise<unknown> | undefined
const build = () => (built ??= run('pnpm', ['--filter', 'finance-api', 'build'], { cwd: EXAMPLE_DIR, timeout: 120_000 }))

t.test('package.json: start:prod runs the compiled server on plain node, and production needs no tsx', async (t) => {
  t.equal(pkg.scripts['start:prod'], 'node --enable-source-maps dist/server.js')
  t.notOk(pkg.dependencies.tsx, 'tsx is not a production dependency')
  t.ok(pkg.devDependencies.tsx, 'it is a development one (pnpm start, seed)')
  t.same(pkg.files, ['dist', 'migrations', 'public'], 'what a deploy copy carries')
})

t.test('the build emits JavaScript that node dist/server.js runs, from any working directory', async (t) => {
  await build()
  await servesFromMigratedDatabase(t, join(EXAMPLE_DIR, 'dist/server.js'))
})

t.test('a copy made by pnpm deploy --prod runs too', async (t) => {
  const target = mkdtempSync(join(tmpdir(), 'finance-api-deploy-'))
  t.teardown(() => rmSync(target, { recursive: true, force: true }))
  await build()
  // pnpm deploy refuses an existing directory
  rmSync(target, { recursive: true, force: true })
  await run('pnpm', ['--filter', 'finance-api', 'deploy', '--prod', target], { cwd: EXAMPLE_DIR, timeout: 120_000 })
  const deployed = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8'))
  t.equal(deployed.scripts['start:prod'], pkg.scripts['start:prod'])
  await servesFromMigratedDatabase(t, join(target, 'dist/server.js'))
})
