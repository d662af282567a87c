/**
 * What the image would run, without docker: the Dockerfile's own build and
 * `pnpm deploy` commands (read from it, not repeated here), the runtime
 * stage's COPY set, and its ENTRYPOINT + CMD (tini, node dist/server.js),
 * started with NODE_ENV=production against the real PostgreSQL and Redis.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_DRAIN_TIMEOUT_MS } from '@headroom/health'
import { freePort, isolatedRedis, isolatedSchema, waitFor } from '@headroom/testing'
import pg from 'pg'
import t from 'tap'
import { readDockerfile, REPO_ROOT, words } from './deploy-files.js'

const DRAIN_DELAY_MS = 3000

function run (file: string, args: string[], options: { cwd: string, env?: NodeJS.ProcessEnv, timeoutMs?: number }): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? 170_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr })
    })
  })
}

async function exists (path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}

t.test('the image\'s build, deploy and command: production modules only, ready on real servers, drains on SIGTERM and exits 0', async (t) => {
  const image = readDockerfile()
  const dir = await mkdtemp(join(tmpdir(), 'finance-image-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  // 1. the build stage's commands, as the Dockerfile words them
  const build = image.runs.find((r) => /^pnpm (--filter finance-api build|--filter=finance-api build)$/.test(r))
  t.ok(build, 'the Dockerfile builds the example with pnpm --filter finance-api build')
  const deployRun = image.runs.find((r) => r.startsWith('pnpm deploy '))
  t.ok(deployRun, 'the Dockerfile deploys with pnpm deploy')
  if (!build || !deployRun) return
  const deployArgs = words(deployRun).slice(1)
  const target = deployArgs[deployArgs.length - 1]!
  t.ok(deployArgs.includes('--prod'), 'production dependencies only')
  t.ok(target.startsWith('/'), `pnpm deploy writes to an absolute directory (${target})`)
  const out = join(dir, 'out')
  const built = await run('pnpm', words(build).slice(1), { cwd: REPO_ROOT })
  t.equal(built.code, 0, build)
  if (built.code !== 0) t.comment(built.stdout + built.stderr)
  const deployed = await run('pnpm', [...deployArgs.slice(0, -1), out], { cwd: REPO_ROOT })
  t.equal(deployed.code, 0, deployRun)
  if (deployed.code !== 0) t.comment(deployed.stdout + deployed.stderr)
  if (deployed.code !== 0) return

  // 2. the runtime stage: only what it copies from the deployed directory
  const app = join(dir, 'app')
  t.ok(image.copiesFromBuild.length > 0)
  const sources = `${image.buildWorkdir}/`
  for (const { from, to } of image.copiesFromBuild) {
    // the deployed directory, or (a file outside the package's `files`) the build stage's copy of the repository
    const source = from.startsWith(`${target}/`)
      ? join(out, from.slice(target.length + 1))
      : from.startsWith(sources) ? join(REPO_ROOT, from.slice(sources.length)) : undefined
    t.ok(source, `COPY --from=build ${from} comes from the deployed directory or the sources`)
    if (!source) continue
    t.ok(await exists(source), `${from} exists after pnpm deploy`)
    await cp(source, join(app, to), { recursive: true, verbatimSymlinks: true })
  }

  // 3. production modules only: no tsx, no devDependency of the example
  const original = JSON.parse(await readFile(join(REPO_ROOT, 'examples/finance-api/package.json'), 'utf8')) as { dependencies: Record<string, string>, devDependencies: Record<string, string> }
  const store = await readdir(join(app, 'node_modules/.pnpm'))
  const installed = (name: string) => store.some((d) => d.startsWith(`${name.replace('/', '+')}@`)) ||
    exists(join(app, 'node_modules', name))
  t.notOk(await installed('tsx'), 'no tsx: the image runs compiled JavaScript')
  // what the production dependencies need themselves (a devDependency of the example may also be
  // one of theirs): deployed for them, not for the example
  const neededByProduction = new Set<string>()
  for (const dep of Object.keys(original.dependencies)) {
    const manifest = join(app, 'node_modules', dep, 'package.json')
    if (!await exists(manifest)) continue
    const { dependencies = {} } = JSON.parse(await readFile(manifest, 'utf8')) as { dependencies?: Record<string, string> }
    for (const name of Object.keys(dependencies)) neededByProduction.add(name)
  }
  for (const name of Object.keys(original.devDependencies)) {
    if (neededByProduction.has(name)) {
      t.notOk(await exists(join(app, 'node_modules', name)), `devDependency ${name} is not linked for the example (only for the production dependency that needs it)`)
    } else {
      t.notOk(await installed(name), `devDependency ${name} is not deployed`)
    }
  }
  t.ok(await exists(join(app, 'dist/server.js')), 'compiled server')
  t.notOk(await exists(join(app, 'src')), 'no TypeScript sources in the image')
  t.notOk(await installed('esbuild'), 'no esbuild (tsx\'s compiler) either')

  // 4. real servers: a private schema and a private Redis key prefix
  const { url } = await isolatedSchema(t)
  const redis = await isolatedRedis(t)
  const secrets = join(dir, 'secrets')
  await cp(join(REPO_ROOT, 'examples/finance-api/deploy/secrets/.gitignore'), join(secrets, '.gitignore'))
  await writeFile(join(secrets, 'database_url'), url + '\n')
  await writeFile(join(secrets, 'session_secret'), 'a-production-secret-of-at-least-32-characters\n')

  // only the image's environment (tap's NODE_OPTIONS loaders must not leak in)
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, ...image.env }
  t.equal(image.env.NODE_ENV, 'production')

  // 5. the migration command (README, k8s/migrate/job.yaml): node deploy/migrate.mjs
  const unset = await run('node', ['deploy/migrate.mjs'], { cwd: app, env: base, timeoutMs: 60_000 })
  t.equal(unset.code, 1, 'without DATABASE_URL the migration command fails')
  t.match(unset.stderr, /DATABASE_URL \(or DATABASE_URL_FILE\) must be set/)
  const migrated = await run('node', ['deploy/migrate.mjs'], { cwd: app, env: { ...base, DATABASE_URL_FILE: join(secrets, 'database_url') }, timeoutMs: 60_000 })
  t.equal(migrated.code, 0, 'node deploy/migrate.mjs exits 0')
  if (migrated.code !== 0) t.comment(migrated.stderr)
  t.match(migrated.stdout, /"applied":\["001_init\.sql"/)
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  t.teardown(() => db.end())
  t.ok((await db.query('SELECT name FROM schema_migrations')).rowCount! >= 1, 'migrations recorded in the private schema')

  // 6. ENTRYPOINT + CMD, as the image starts them
  const argv = [...image.entrypoint, ...image.cmd]
  const scripts = (JSON.parse(await readFile(join(REPO_ROOT, 'examples/finance-api/package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts
  t.same(image.cmd, words(scripts['start:prod']!), 'CMD is what pnpm start:prod runs (and the topology test)')
  t.equal(image.cmd[0], 'node', 'plain Node')
  t.ok(image.cmd.includes('dist/server.js'), 'the compiled server')
  t.equal(image.entrypoint[0], '/usr/bin/tini', 'tini runs node (the Debian package at the same path as in the image)')
  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    ...base,
    // loopback here; 0.0.0.0 in the image
    HOST: '127.0.0.1',
    PORT: String(port),
    // secrets as files, as compose and Kubernetes mount them
    DATABASE_URL_FILE: join(secrets, 'database_url'),
    SESSION_SECRET_FILE: join(secrets, 'session_secret'),
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: redis.prefix,
    // the test is the proxy here (loopback only): it says the client came over https
    TRUST_PROXY: '127.0.0.1',
    DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
    LOG_LEVEL: 'info'
  }
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const output: string[] = []
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()))
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()))
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.teardown(() => {
    // the whole process group (tini and node), if the test ended early
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ }
    }
  })
  const base_ = `http://127.0.0.1:${port}`
  const status = async (path: string) => (await fetch(base_ + path, { signal: AbortSignal.timeout(5000) })).status

  await waitFor('/health/ready 200 from the deployed server', async () => {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output.join('')}`)
    return await status('/health/ready') === 200
  }, 90_000, 200)
  t.pass('ready')
  t.equal(await status('/health'), 200)
  t.equal(await status('/'), 200, 'the dashboard is served from public/')
  const signup = await fetch(`${base_}/api/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
    body: JSON.stringify({ email: 'image@example.com', password: 'a long password', name: 'Image' })
  })
  t.equal(signup.status, 201, 'a signup writes to PostgreSQL and the session to Redis')
  t.match(signup.headers.get('set-cookie') ?? '', /; Secure/i, 'production cookies are Secure')

  // 7. SIGTERM, as docker stop / the kubelet send it to PID 1 (tini)
  const termAt = Date.now()
  process.kill(child.pid!, 'SIGTERM')
  let sawNotReady = false
  let liveWhileDraining = false
  while (Date.now() - termAt < DRAIN_DELAY_MS && child.exitCode === null) {
    try {
      if (await status('/health/ready') === 503) {
        sawNotReady = true
        liveWhileDraining = await status('/health') === 200
        break
      }
    } catch { break }
  }
  t.ok(sawNotReady, 'readiness answers 503 during the drain delay')
  t.ok(liveWhileDraining, 'liveness stays 200 while draining')
  const [code, signal] = await exited
  const took = Date.now() - termAt
  t.equal(signal, null, 'not killed by a signal')
  t.equal(code, 0, 'exit code 0')
  if (code !== 0) t.comment(output.join('').slice(-4000))
  t.ok(took >= DRAIN_DELAY_MS - 100, `kept serving for the drain delay (${took} ms)`)
  t.ok(took < DRAIN_DELAY_MS + DEFAULT_DRAIN_TIMEOUT_MS, `exited within drain delay + drain timeout (${took} ms < ${DRAIN_DELAY_MS + DEFAULT_DRAIN_TIMEOUT_MS} ms)`)
  t.match(output.join(''), /draining: closed/)
})
