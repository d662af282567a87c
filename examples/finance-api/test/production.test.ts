import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { isolatedSchema } from '@headroom/testing'
import type { Test } from 'tap'
import pg from 'pg'
import t from 'tap'
import { build, DIST_SERVER, EXAMPLE_DIR, run, runServer } from './dist-server.js'

const pkg = JSON.parse(readFileSync(join(EXAMPLE_DIR, 'package.json'), 'utf8'))

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

t.test('package.json: start:prod runs the compiled server on plain node, and production needs no tsx', async (t) => {
  t.equal(pkg.scripts['start:prod'], 'node --enable-source-maps dist/server.js')
  t.equal(pkg.scripts.start, 'TSX_TSCONFIG_PATH=tsconfig.dev.json node --env-file=.env.development --enable-source-maps --import tsx src/server.ts',
    'pnpm start (development) runs the sources through tsx: no build first')
  t.match(readFileSync(join(EXAMPLE_DIR, 'deploy/Dockerfile.dockerignore'), 'utf8'), /^\*\*\/\.env\.\*$/m, 'the image never gets the development defaults')
  t.notOk(pkg.dependencies.tsx, 'tsx is not a production dependency')
  t.ok(pkg.devDependencies.tsx, 'it is a development one (pnpm start, seed)')
  t.same(pkg.files, ['dist', 'migrations', 'public'], 'what a deploy copy carries')
})

t.test('pnpm start resolves the @headroom packages to their sources, so a fresh clone starts without building them', async (t) => {
  // what `pnpm start` loads: its environment and loader, asked where the packages are
  const env = { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.dev.json' }
  const script = "for (const p of ['core', 'pool', 'session', 'ratelimit', 'cache', 'health']) console.log(import.meta.resolve('@headroom/' + p))"
  const { stdout } = await run('node', ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: EXAMPLE_DIR, env })
  const resolved = stdout.trim().split('\n')
  t.equal(resolved.length, 6)
  for (const url of resolved) t.match(url, /\/packages\/[a-z]+\/src\/index\.ts$/, url)
  // and without the mapping (tsc, start:prod, the image) they are the built dist/
  const plain = await run('node', ['--input-type=module', '-e', script], { cwd: EXAMPLE_DIR })
  for (const url of plain.stdout.trim().split('\n')) t.match(url, /\/packages\/[a-z]+\/dist\/index\.js$/, url)
})

t.test('the build emits JavaScript that node dist/server.js runs, from any working directory', async (t) => {
  await build()
  await servesFromMigratedDatabase(t, DIST_SERVER)
})

t.test('production logs: JSON lines with service, version, env and the request id, which the response echoes', async (t) => {
  await build()
  const { url: databaseUrl } = await isolatedSchema(t)
  const server = await runServer(t, DIST_SERVER, {
    DATABASE_URL: databaseUrl,
    NODE_ENV: 'production',
    DRAIN_DELAY_MS: '0',
    // production logs only failed and slow requests by default (request-log.test.ts): this test reads a 401's line
    REQUEST_LOG: 'all',
    SESSION_SECRET: 'production-test-secret-0123456789-abcdefghij'
  })
  const res = await fetch(`${server.url}/api/transactions`, { headers: { 'x-request-id': 'prod-trace-7' } })
  t.equal(res.status, 401)
  t.equal(res.headers.get('x-request-id'), 'prod-trace-7', 'echoed')
  t.equal(((await res.json()) as { requestId: string }).requestId, 'prod-trace-7', 'the error body names it')
  t.equal(await server.stop(), 0)
  const lines = server.output().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
  t.ok(lines.length > 3, 'every line is JSON')
  for (const line of lines) t.match(line, { service: 'finance-api', version: pkg.version, env: 'production' })
  t.ok(lines.some((l) => l.reqId === 'prod-trace-7' && l.msg === 'request completed'), 'the request\'s log line has the id')
})

t.test('source maps: a stack thrown from dist names the src/*.ts file and line', async (t) => {
  await build()
  const script = `import { loadConfig } from ${JSON.stringify(pathToFileURL(join(EXAMPLE_DIR, 'dist/config.js')).href)}
try { loadConfig({ PORT: 'none' }) } catch (err) { console.log(err.stack) }`
  const { stdout } = await run(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', script], { timeout: 30_000 })
  t.match(stdout, /PORT must be an integer/)
  t.match(stdout, /src\/config\.ts:\d+:\d+/, 'the TypeScript source, mapped')
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
