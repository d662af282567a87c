// What users install: every public package packed as the registry would get
// it, checked (file list, metadata, publint, attw), installed with npm from
// the tarballs into projects outside the workspace, type-checked by a strict
// consumer (nodenext and bundler), run against the real PostgreSQL and Redis,
// and require()d from CommonJS. Then the release flow's dry run: changesets
// version in a scratch copy and `pnpm publish -r --dry-run`.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const BIN = join(ROOT, 'node_modules', '.bin')
const PUBLIC = ['core', 'pool', 'session', 'ratelimit', 'cache', 'health'] as const
const PRIVATE = ['@headroom/testing', '@headroom/benchmarks', 'finance-api']
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
// what CI installs next to the tarballs: the peers' current majors (the ones the workspace tests)
const FASTIFY = 'fastify@^5.6.0'
const IOREDIS = 'ioredis@^6.0.0'
// the other major the peer range claims (^5.8.0 || ^6.0.0); the workspace tests 6 only
const IOREDIS_5 = 'ioredis@^5.8.0'
const THIRD_PARTY_TYPES = ['@types/node@^20.19.0', '@types/pg@^8.15.6']

// npm and a project of its own outside the workspace; not /tmp/headroom-test-* (CI's leftover check is for private servers)
const WORK = mkdtempSync(join(tmpdir(), 'headroom-pack-'))
t.teardown(() => rmSync(WORK, { recursive: true, force: true }))
// generous: npm installs and tsc on fastify's types on a machine at load 10+
t.setTimeout(20 * 60_000)

/** the environment of a child outside the workspace: none of tap's loaders, none of pnpm's npm_* settings */
function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|NODE_OPTIONS$|TAP|_TAP|TS_NODE|NODE_ENV$|PNPM_)/i.test(k)) continue
    env[k] = v
  }
  return { ...env, ...extra }
}

async function sh (cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = cleanEnv()): Promise<{ stdout: string, stderr: string }> {
  try {
    return await run(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 })
  } catch (err) {
    const e = err as Error & { stdout?: string, stderr?: string }
    throw new Error(`${basename(cmd)} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

/** runs fn over items, `limit` at a time (2 cores, other tests running) */
async function pooled<T, R> (items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i]!) }
  }))
  return out
}

const tarballs = new Map<string, string>() // package dir name -> tarball path

t.test('tarballs hold dist (JavaScript and types), README, LICENSE, CHANGELOG and nothing else', async (t) => {
  // CI built already (pnpm typecheck); an up-to-date build is a no-op
  await sh(join(BIN, 'tsc'), ['-b', 'tsconfig.json'], ROOT, 10 * 60_000, process.env)
  const dest = join(WORK, 'tarballs')
  mkdirSync(dest)
  for (const p of PUBLIC) {
    const { stdout } = await sh('pnpm', ['pack', '--pack-destination', dest], join(ROOT, 'packages', p), 120_000, process.env)
    const file = readdirSync(dest).find((f) => f.startsWith(`headroom-${p}-`) && f.endsWith('.tgz'))
    t.ok(file, `pnpm pack wrote @headroom/${p}'s tarball`, { stdout })
    tarballs.set(p, join(dest, file!))
  }
  for (const p of PUBLIC) {
    const { stdout } = await sh('tar', ['-tzf', tarballs.get(p)!], WORK, 30_000)
    const files = stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, '')).sort()
    const sources = readdirSync(join(ROOT, 'packages', p, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    const expected = [
      'CHANGELOG.md', 'LICENSE', 'README.md', 'package.json',
      ...sources.flatMap((f) => [`dist/${f.replace(/\.ts$/, '.js')}`, `dist/${f.replace(/\.ts$/, '.d.ts')}`])
    ].sort()
    // a file in dist without a source (left from a renamed module) fails here too: `pnpm release` builds from a clean dist
    t.same(files, expected, `@headroom/${p}: one .js and one .d.ts per source module, no maps, no .tsbuildinfo, no tests`)
  }
})

t.test('package metadata a registry user expects', async (t) => {
  for (const p of PUBLIC) {
    const pkg = JSON.parse((await sh('tar', ['-xzOf', tarballs.get(p)!, 'package/package.json'], WORK, 30_000)).stdout)
    const at = `@headroom/${p}`
    t.equal(pkg.name, at)
    t.equal(pkg.license, 'MIT', `${at}: license`)
    t.match(pkg.repository, { type: 'git', url: /^git\+https:\/\/.+\.git$/, directory: `packages/${p}` }, `${at}: repository with its directory`)
    t.match(pkg.homepage, new RegExp(`/packages/${p}#readme$`), `${at}: homepage is its README`)
    t.match(pkg.bugs, { url: /\/issues$/ }, `${at}: bugs`)
    t.ok(Array.isArray(pkg.keywords) && pkg.keywords.includes('fastify'), `${at}: keywords`)
    t.equal(pkg.sideEffects, false, `${at}: sideEffects false (nothing runs on import)`)
    t.equal(pkg.engines?.node, '>=20.19', `${at}: engines (require(esm) needs 20.19)`)
    t.equal(pkg.main, './dist/index.js', `${at}: main for resolvers without exports`)
    t.equal(pkg.types, './dist/index.d.ts', `${at}: types for resolvers without exports`)
    t.same(pkg.publishConfig, { access: 'public' }, `${at}: a scoped package published public`)
    t.equal(pkg.type, 'module')
    const ranges = { ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies }
    for (const [name, range] of Object.entries(ranges)) {
      t.notMatch(String(range), /^workspace:/, `${at}: ${name} has a registry range (${String(range)})`)
      if (name.startsWith('@headroom/')) t.equal(name, '@headroom/core', `${at}: depends on no headroom package but core (each plugin works alone)`)
    }
    // the repository's licence, then the notices of code a package derives from (session: @fastify/session's)
    const license = readFileSync(join(ROOT, 'packages', p, 'LICENSE'), 'utf8')
    const repository = readFileSync(join(ROOT, 'LICENSE'), 'utf8')
    t.equal(license.slice(0, repository.length), repository, `${at}: LICENSE begins with the repository's`)
    if (p === 'session') t.match(license, /derived from @fastify\/session[\s\S]*Copyright \(c\) 2021-present The Fastify team/, `${at}: LICENSE carries @fastify/session's notice`)
  }
})

t.test('publint and attw find no problem in the tarballs', async (t) => {
  const { publint } = await import('publint')
  const { formatMessage } = await import('publint/utils')
  for (const p of PUBLIC) {
    const data = readFileSync(tarballs.get(p)!)
    const tarball = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer
    const { messages, pkg } = await publint({ pack: { tarball }, level: 'suggestion' })
    const shown = messages.map((m) => `${m.type}: ${formatMessage(m, pkg, { color: false }) ?? m.code}`)
    // warnings count: the suggestions publint makes here are about fields we chose on purpose (none today)
    t.same(shown.filter((m) => !m.startsWith('suggestion')), [], `publint @headroom/${p}`)
    if (shown.length > 0) t.comment(shown.join('\n'))
  }
  // ESM only, and we say so: `require()` works from Node 20.19 on (engines) and
  // from TypeScript >= 5.8 with module nodenext (checked below, compiled and run),
  // so attw's cjs-resolves-to-esm (a require that resolves to ESM, an error before
  // require(esm)) is what we claim, not a problem. Everything else counts,
  // node10 (main/types) included.
  const attw = await pooled(PUBLIC, 3, async (p) => {
    try {
      await sh(join(BIN, 'attw'), [tarballs.get(p)!, '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'ascii', '--no-color'], WORK, 180_000, process.env)
      return null
    } catch (err) { return (err as Error).message }
  })
  PUBLIC.forEach((p, i) => t.equal(attw[i], null, `attw @headroom/${p}`))
})

// --- consumers ---------------------------------------------------------------

const PROBE = `import type { FastifyInstance } from 'fastify'

/** injects each request in turn, closes the app, prints one JSON line the test reads */
export async function probe (name: string, app: FastifyInstance, urls: string[]): Promise<void> {
  await app.ready()
  const answers: Array<{ url: string, status: number, body: string }> = []
  for (const url of urls) {
    const res = await app.inject({ url })
    answers.push({ url, status: res.statusCode, body: res.body })
  }
  await app.close()
  console.log(JSON.stringify({ name, answers }))
}

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
/** a key prefix of this run's own: other tests share this Redis */
export const PREFIX = \`\${process.env.PACK_PREFIX ?? 'pack'}:\`
`

const POOL = `import Fastify from 'fastify'
import headroomPool, { type PoolOptions } from '@headroom/pool'
import { DATABASE_URL, probe } from './probe.js'

const options: PoolOptions = { primary: DATABASE_URL, min: 1, max: 2 }
const app = Fastify()
await app.register(headroomPool, options)
app.get('/sum', async (request) => {
  const { rows } = await request.db.read<{ n: number }>('SELECT 1 + 1 AS n', [], { name: 'sum' })
  const viaApp = await app.db.query<{ one: number }>('SELECT 1 AS one')
  return { n: rows[0]?.n, one: viaApp.rows[0]?.one }
})
await probe('pool', app, ['/sum'])
`

const HEALTH = `import Fastify from 'fastify'
import headroomHealth, { type HealthOptions } from '@headroom/health'
import { probe } from './probe.js'

const options: HealthOptions = { checks: [{ name: 'consumer:check', critical: false, check: async () => ({ status: 'pass' }) }] }
const app = Fastify()
await app.register(headroomHealth, options)
app.get('/draining', async () => ({ draining: app.health.draining, status: app.health.readiness().status }))
await probe('health', app, ['/health', '/health/ready', '/metrics', '/draining'])
`

const SESSION = (redis: boolean): string => `import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
${redis ? "import fastifyRedis from '@fastify/redis'\n" : ''}import headroomSession, { type SessionOptions } from '@headroom/session'
import { PREFIX, ${redis ? 'REDIS_URL, ' : ''}probe } from './probe.js'

declare module '@headroom/session' {
  interface SessionData { visits?: number }
}

const options: SessionOptions = { secret: randomBytes(32).toString('base64url'), keyPrefix: \`\${PREFIX}sess:\`, cookie: { secure: false } }
const app = Fastify()
${redis ? 'await app.register(fastifyRedis, { url: REDIS_URL, enableOfflineQueue: false, maxRetriesPerRequest: 1 })\n' : ''}await app.register(headroomSession, options)
app.get('/visit', async (request) => {
  request.session.visits = (request.session.visits ?? 0) + 1
  return { visits: request.session.visits, fallbackActive: app.sessions.fallbackActive }
})
await probe('session${redis ? '' : '-memory'}', app, ['/visit'])
`

const RATELIMIT = (redis: boolean): string => `import Fastify from 'fastify'
${redis ? "import fastifyRedis from '@fastify/redis'\n" : ''}import headroomRateLimit, { type HeadroomRateLimitOptions } from '@headroom/ratelimit'
import { PREFIX, ${redis ? 'REDIS_URL, ' : ''}probe } from './probe.js'

const options: HeadroomRateLimitOptions = { prefix: \`\${PREFIX}rl:\` }
const app = Fastify()
${redis ? 'await app.register(fastifyRedis, { url: REDIS_URL, enableOfflineQueue: false, maxRetriesPerRequest: 1 })\n' : ''}await app.register(headroomRateLimit, options)
app.get('/limited', { config: { rateLimit: { max: 2, timeWindow: '1m' } } }, async () => ({ policies: app.headroomRateLimit.policies().length }))
await probe('ratelimit${redis ? '' : '-memory'}', app, ['/limited', '/limited', '/limited'])
`

const CACHE = (redis: boolean): string => `import Fastify from 'fastify'
${redis ? "import { Redis } from 'ioredis'\n" : ''}import headroomCache, { type CacheOptions } from '@headroom/cache'
import { PREFIX, ${redis ? 'REDIS_URL, ' : ''}probe } from './probe.js'

declare module '@headroom/cache' {
  interface CacheNamespaces { quotes: { perUser: false } }
}

const app = Fastify()
${redis
  ? `const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
app.addHook('onClose', async () => { await redis.quit() }) // ours: the plugin never closes a client it was given
const options: CacheOptions = { redis, prefix: \`\${PREFIX}cache:\`, namespaces: { quotes: { ttl: 60_000 } } }`
  : 'const options: CacheOptions = { prefix: PREFIX + \'cache:\', namespaces: { quotes: { ttl: 60_000 } } }'}
await app.register(headroomCache, options)
let computed = 0
app.get('/quote', async () => {
  const quote = await app.cache.ns('quotes').wrap('EURUSD', async () => ({ rate: 1.08, computed: ++computed }))
  return { quote, computed }
})
await probe('cache${redis ? '' : '-memory'}', app, ['/quote', '/quote'])
`

const ALL = `import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import headroomCache from '@headroom/cache'
import headroomHealth from '@headroom/health'
import headroomPool from '@headroom/pool'
import headroomRateLimit from '@headroom/ratelimit'
import headroomSession from '@headroom/session'
import { DATABASE_URL, PREFIX, REDIS_URL, probe } from './probe.js'

const app = Fastify()
await app.register(fastifyRedis, { url: REDIS_URL, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
await app.register(headroomHealth)
await app.register(headroomPool, { primary: DATABASE_URL, min: 1, max: 2 })
await app.register(headroomSession, { secret: randomBytes(32).toString('base64url'), keyPrefix: \`\${PREFIX}sess:\`, cookie: { secure: false } })
await app.register(headroomRateLimit, { prefix: \`\${PREFIX}rl:\` })
await app.register(headroomCache, { prefix: \`\${PREFIX}cache:\` })
app.get('/all', { config: { rateLimit: { max: 100, timeWindow: '1m' } } }, async (request) => {
  const { rows } = await request.db.read<{ n: number }>('SELECT 2 AS n')
  const cached = await app.cache.wrap('answer', async () => 42)
  request.session.userId = 'u1'
  return { n: rows[0]?.n, cached, session: typeof request.session.sessionId, ready: app.health.readiness().status }
})
await app.register(async (child) => { child.get('/child', async () => ({ draining: child.health.draining })) })
await probe('all', app, ['/all', '/health/ready', '/metrics', '/child'])
`

// CommonJS, compiled by TypeScript (.cts under nodenext) and run by Node
const CJS_TS = (pkgs: readonly string[]): string => `${pkgs.map((p) => `import ${p} = require('@headroom/${p}')`).join('\n')}
export const loaded: Record<string, unknown> = { ${pkgs.map((p) => `${p}: ${p}`).join(', ')} }
`
const CJS_JS = (pkgs: readonly string[]): string => `'use strict'
const out = {}
for (const p of ${JSON.stringify(pkgs)}) {
  try {
    const m = require('@headroom/' + p)
    out[p] = { keys: Object.keys(m).length, default: typeof m.default }
  } catch (err) { out[p] = { error: String(err.message).split('\\n')[0] } }
}
try {
  const compiled = require('./out/cjs.cjs').loaded
  for (const p of Object.keys(compiled)) out[p].compiled = typeof compiled[p]
} catch (err) { for (const p of Object.keys(out)) out[p].compiledError = String(err.message).split('\\n')[0] }
console.log(JSON.stringify(out))
`

/** the entries type-checked in a compile of their own, in every project */
const ALONE_ENTRIES = ['pool', 'health']
const ALONE = { nodenext: 'tsconfig.alone.json', bundler: 'tsconfig.alone.bundler.json' } as const

const hasAlone = (project: Project): boolean => ALONE_ENTRIES.every((name) => project.entries[name] !== undefined)

function alone (mode: 'nodenext' | 'bundler'): string {
  const config = JSON.parse(tsconfig(mode)) as { compilerOptions: Record<string, unknown>, include?: string[], files?: string[] }
  delete config.include
  config.compilerOptions.noEmit = true
  config.files = ALONE_ENTRIES.map((name) => `src/${name}.ts`)
  return JSON.stringify(config, null, 2)
}

function tsconfig (mode: 'nodenext' | 'bundler'): string {
  const moduleOptions = mode === 'nodenext'
    ? { module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out' }
    : { module: 'esnext', moduleResolution: 'bundler', noEmit: true }
  return JSON.stringify({
    compilerOptions: {
      strict: true,
      // the packages' .d.ts must stand on their own: a type that needs a package the user did not install fails here
      skipLibCheck: false,
      target: 'es2022',
      types: ['node'],
      ...moduleOptions
    },
    include: mode === 'nodenext' ? ['src'] : ['src/**/*.ts']
  }, null, 2)
}

interface Project {
  name: string
  dir: string
  extra: string[]
  /** consumer entry -> its source and the headroom packages it imports (directly or through them) */
  entries: Record<string, { source: string, loads: ReadonlyArray<typeof PUBLIC[number]> }>
}

const projects: Project[] = [
  // no ioredis anywhere in node_modules: pool and health need none, and ioredis is
  // an optional peer of session, ratelimit and cache, which then run on their
  // in-memory fallbacks
  {
    name: 'no-ioredis',
    dir: '',
    extra: [],
    entries: {
      pool: { source: POOL, loads: ['core', 'pool'] },
      health: { source: HEALTH, loads: ['core', 'health'] },
      'session-memory': { source: SESSION(false), loads: ['core', 'session'] },
      'ratelimit-memory': { source: RATELIMIT(false), loads: ['core', 'ratelimit'] },
      'cache-memory': { source: CACHE(false), loads: ['core', 'cache'] }
    }
  },
  // each Redis plugin alone on the real Redis, and the five together: with ioredis 6, and with ioredis 5
  ...[IOREDIS, IOREDIS_5].map((ioredis) => ({
    name: ioredis === IOREDIS ? 'with-ioredis' : 'with-ioredis-5',
    dir: '',
    extra: [ioredis, '@fastify/redis@^9.0.0'],
    entries: {
      session: { source: SESSION(true), loads: ['core', 'session'] },
      ratelimit: { source: RATELIMIT(true), loads: ['core', 'ratelimit'] },
      cache: { source: CACHE(true), loads: ['core', 'cache'] },
      all: { source: ALL, loads: PUBLIC }
    }
  } satisfies Project))
]

t.test('npm installs the tarballs outside the workspace, with fastify and third-party packages only', async (t) => {
  await Promise.all(projects.map(async (project) => {
    project.dir = join(WORK, project.name)
    mkdirSync(join(project.dir, 'src'), { recursive: true })
    writeFileSync(join(project.dir, 'package.json'), JSON.stringify({ name: `consumer-${project.name}`, private: true, type: 'module' }, null, 2))
    const args = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error',
      ...PUBLIC.map((p) => tarballs.get(p)!), FASTIFY, ...THIRD_PARTY_TYPES, ...project.extra]
    await sh('npm', args, project.dir, 8 * 60_000)
    writeFileSync(join(project.dir, 'src', 'probe.ts'), PROBE)
    for (const [name, { source }] of Object.entries(project.entries)) writeFileSync(join(project.dir, 'src', `${name}.ts`), source)
    writeFileSync(join(project.dir, 'src', 'cjs.cts'), CJS_TS(PUBLIC))
    writeFileSync(join(project.dir, 'require.cjs'), CJS_JS(PUBLIC))
    writeFileSync(join(project.dir, 'tsconfig.json'), tsconfig('nodenext'))
    writeFileSync(join(project.dir, 'tsconfig.bundler.json'), tsconfig('bundler'))
    // pool and health compiled on their own as well: in the whole project, the
    // Redis plugins' entries load core's Redis side, whose ioredis error would
    // be counted against every entry that loads core
    if (hasAlone(project)) {
      writeFileSync(join(project.dir, ALONE.nodenext), alone('nodenext'))
      writeFileSync(join(project.dir, ALONE.bundler), alone('bundler'))
    }
  }))
  for (const project of projects) {
    const installed = readdirSync(join(project.dir, 'node_modules', '@headroom')).sort()
    t.same(installed, [...PUBLIC].sort(), `${project.name}: exactly the six tarballs, nothing else of headroom's`)
    const ioredis = existsSync(join(project.dir, 'node_modules', 'ioredis'))
    t.equal(ioredis, project.extra.some((e) => e.startsWith('ioredis@')), `${project.name}: ioredis ${ioredis ? 'installed' : 'absent'}`)
    if (ioredis) {
      const { version } = JSON.parse(readFileSync(join(project.dir, 'node_modules', 'ioredis', 'package.json'), 'utf8'))
      t.equal(version.split('.')[0], project.extra.includes(IOREDIS_5) ? '5' : '6', `${project.name}: ioredis ${version}`)
    }
  }
})

/** tsc's errors by file: `file(line,col): error TSnnnn: message` with the indented lines that continue it */
function errorsByFile (output: string): Map<string, string[]> {
  const byFile = new Map<string, string[]>()
  let last: { file: string, i: number } | null = null
  for (const line of output.split('\n')) {
    const file = /^(\S[^(]*)\(\d+,\d+\): error TS\d+/.exec(line)?.[1] ?? (line.trim() !== '' && !line.startsWith(' ') ? '(tsc)' : null)
    if (file !== null) {
      const list = byFile.get(file) ?? []
      list.push(line)
      byFile.set(file, list)
      last = { file, i: list.length - 1 }
    } else if (last !== null && line.trim() !== '') {
      byFile.get(last.file)![last.i] += `\n${line}`
    }
  }
  return byFile
}

t.test('a strict TypeScript consumer type-checks: module nodenext, and module esnext with moduleResolution bundler', async (t) => {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  const { stdout: version } = await sh(process.execPath, [tsc, '--version'], ROOT, 60_000)
  t.comment(`workspace ${version.trim()}; strict, skipLibCheck false`)
  const jobs = projects.flatMap((project) => ['tsconfig.json', 'tsconfig.bundler.json', ...(hasAlone(project) ? [ALONE.nodenext, ALONE.bundler] : [])].map((config) => ({ project, config })))
  const results = await pooled(jobs, 2, async ({ project, config }) => {
    try {
      await run(process.execPath, [tsc, '-p', config], { cwd: project.dir, env: cleanEnv(), timeout: 8 * 60_000, maxBuffer: 64 * 1024 * 1024 })
      return ''
    } catch (err) {
      // tsc prints its errors on stdout; anything else (a crash, the timeout) fails every entry
      const e = err as Error & { stdout?: string, stderr?: string }
      return `${e.stdout ?? ''}\n${e.stdout === undefined || e.stdout === '' ? `(tsc) ${e.message} ${e.stderr ?? ''}` : ''}`
    }
  })
  jobs.forEach(({ project, config }, i) => {
    const errors = errorsByFile(results[i]!)
    const entries = { ...project.entries, cjs: { loads: PUBLIC } }
    const isAlone = config === ALONE.nodenext || config === ALONE.bundler
    for (const [name, { loads }] of Object.entries(entries)) {
      if (name === 'cjs' && config !== 'tsconfig.json') continue // a .cts is CommonJS: nodenext only
      // pool and health are judged by their own compile, the others by the whole project's
      if (isAlone !== (ALONE_ENTRIES.includes(name) && hasAlone(project))) continue
      // this entry's own file, the .d.ts of the packages it loads, and anything not attributable to one package
      const mine = [...errors].filter(([file]) =>
        file === `src/${name}.${name === 'cjs' ? 'cts' : 'ts'}` || file === 'src/probe.ts' || file === '(tsc)' ||
        loads.some((p) => file.startsWith(`node_modules/@headroom/${p}/`)) ||
        (file.startsWith('node_modules/') && !file.startsWith('node_modules/@headroom/')))
      // session, ratelimit and cache type their `redis` option with ioredis's
      // client types: their TypeScript users need ioredis installed even on the
      // memory fallback (their READMEs say so; running needs none, checked below).
      // Pool and health need none at all. So without ioredis, the one error those
      // three may have is that module not found, and nothing else
      const redisTyped = project.extra.length === 0 && loads.some((p) => p === 'session' || p === 'ratelimit' || p === 'cache')
      const counted = mine.flatMap(([, e]) => e).filter((e) => !(redisTyped && /Cannot find module 'ioredis'/.test(e)))
      t.same(counted, [], `${project.name}: ${name}${name === 'all' ? '' : ' alone'} (${loads.join(', ')}) under ${config === 'tsconfig.json' || config === ALONE.nodenext ? 'nodenext' : 'bundler'}${isAlone ? ', compiled alone' : ''}${redisTyped ? ', ioredis\'s types aside' : ''}`)
    }
  })
})

t.test('each plugin alone and the five together answer requests against the real PostgreSQL and Redis', async (t) => {
  const prefix = `headroom-pack:${randomBytes(4).toString('hex')}`
  const answers = new Map<string, Array<{ url: string, status: number, body: string }>>()
  const scripts = projects.flatMap((project) => Object.keys(project.entries).map((name) => ({ project, name })))
  await pooled(scripts, 3, async ({ project, name }) => {
    const entry = join(project.dir, 'out', `${name}.js`)
    if (!existsSync(entry)) { t.fail(`${name}: not compiled (see the type-check above)`); return }
    try {
      // each script its own key prefix: they run side by side
      const { stdout } = await sh(process.execPath, [entry], project.dir, 120_000, cleanEnv({ DATABASE_URL, REDIS_URL, PACK_PREFIX: `${prefix}:${project.name}:${name}` }))
      answers.set(`${project.name}/${name}`, JSON.parse(stdout.trim().split('\n').at(-1) ?? '').answers)
    } catch (err) {
      t.fail(`${project.name}: ${name} ran`, { diagnostic: true, found: (err as Error).message })
    }
  })
  const statuses = (key: string): number[] => (answers.get(key) ?? []).map((a) => a.status)
  const body = (key: string, i: number): unknown => { const a = answers.get(key)?.[i]; return a === undefined ? undefined : JSON.parse(a.body) }
  t.same(statuses('no-ioredis/pool'), [200], 'pool alone, no ioredis installed: answered')
  t.same(body('no-ioredis/pool', 0), { n: 2, one: 1 }, 'pool alone: queried PostgreSQL through request.db and fastify.db')
  t.same(statuses('no-ioredis/health'), [200, 200, 200, 200], 'health alone, no ioredis installed: liveness, readiness, metrics, a route')
  t.match(body('no-ioredis/health', 3), { draining: false, status: 'pass' }, 'health alone: fastify.health')
  t.same(statuses('no-ioredis/session-memory'), [200], 'session without ioredis installed: answered from memory')
  t.same(statuses('no-ioredis/ratelimit-memory'), [200, 200, 429], 'ratelimit without ioredis installed: limits locally')
  t.same(statuses('no-ioredis/cache-memory'), [200, 200], 'cache without ioredis installed: answered')
  t.match(body('no-ioredis/cache-memory', 1), { computed: 1 }, 'cache without ioredis installed: an L1 hit')
  for (const where of ['with-ioredis', 'with-ioredis-5']) {
    t.same(statuses(`${where}/session`), [200], `${where}: session on Redis: answered`)
    t.match(body(`${where}/session`, 0), { visits: 1, fallbackActive: false }, `${where}: session stored in Redis, not the fallback`)
    t.same(statuses(`${where}/ratelimit`), [200, 200, 429], `${where}: ratelimit on Redis: the third request over max 2 is refused`)
    t.same(statuses(`${where}/cache`), [200, 200], `${where}: cache on Redis: answered`)
    t.match(body(`${where}/cache`, 1), { computed: 1 }, `${where}: cache on Redis: the second request is a hit`)
    t.same(statuses(`${where}/all`), [200, 200, 200, 200], `${where}: the five together: a route using them all, readiness, metrics, a child context`)
    t.match(body(`${where}/all`, 0), { n: 2, cached: 42, session: 'string', ready: 'pass' }, `${where}: the five together: each decorator works`)
    const ready = String(answers.get(`${where}/all`)?.[1]?.body ?? '')
    t.match(ready, /postgres:primary/, `${where}: readiness checks PostgreSQL`)
    t.match(ready, /redis:(session|cache|ratelimit)/, `${where}: readiness checks Redis`)
    t.match(String(answers.get(`${where}/all`)?.[2]?.body ?? ''), /headroom_pool_/, `${where}: /metrics serves the pool's metrics`)
  }
  // the Redis keys this run wrote
  const { Redis } = await import('ioredis')
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  try {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.unlink(...keys)
  } finally { redis.disconnect() }
})

t.test('require() of each package from CommonJS on Node >= 20.19 (TypeScript .cts compiled, and plain require)', async (t) => {
  t.ok(process.versions.node.localeCompare('20.19.0', undefined, { numeric: true }) >= 0, `Node ${process.versions.node} has require(esm)`)
  for (const project of projects) {
    if (!existsSync(join(project.dir, 'out', 'cjs.cjs'))) { t.fail(`${project.name}: cjs.cts not compiled (see the type-check above)`); continue }
    try {
      const { stdout } = await sh(process.execPath, ['require.cjs'], project.dir, 60_000)
      const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
      for (const p of PUBLIC) {
        t.ok(out[p]?.keys > 0, `${project.name}: require('@headroom/${p}') has exports`, { found: out[p] })
        if (p !== 'core') t.equal(out[p]?.default, 'function', `${project.name}: require('@headroom/${p}').default is the plugin`)
        t.equal(out[p]?.compiled, 'object', `${project.name}: the compiled .cts required @headroom/${p}`, { found: out[p] })
      }
    } catch (err) {
      t.fail(`${project.name}: require()`, { diagnostic: true, found: (err as Error).message })
    }
  }
})

t.test('the release flow, dry: changeset version in a scratch copy, pnpm publish -r --dry-run', async (t) => {
  const scratch = join(WORK, 'release')
  mkdirSync(scratch)
  for (const f of ['package.json', 'pnpm-workspace.yaml']) cpSync(join(ROOT, f), join(scratch, f))
  cpSync(join(ROOT, '.changeset'), join(scratch, '.changeset'), { recursive: true })
  const dirs = [...['packages', 'examples'].flatMap((d) => readdirSync(join(ROOT, d)).map((n) => `${d}/${n}`)), 'benchmarks']
  for (const d of dirs) {
    if (!existsSync(join(ROOT, d, 'package.json'))) continue
    mkdirSync(join(scratch, d), { recursive: true })
    for (const f of ['package.json', 'CHANGELOG.md']) if (existsSync(join(ROOT, d, f))) cpSync(join(ROOT, d, f), join(scratch, d, f))
  }
  symlinkSync(join(ROOT, 'node_modules'), join(scratch, 'node_modules'))
  const pending = readdirSync(join(scratch, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md')
  // the largest bump the changesets ask for, per package
  const RANK = { patch: 1, minor: 2, major: 3 } as const
  const asked = new Map<string, number>()
  for (const f of pending) {
    const front = /^---\n([\s\S]*?)\n---/.exec(readFileSync(join(scratch, '.changeset', f), 'utf8'))?.[1] ?? ''
    for (const m of front.matchAll(/^["']?([^"':\s]+)["']?:\s*(patch|minor|major)\s*$/gm)) {
      asked.set(m[1]!, Math.max(asked.get(m[1]!) ?? 0, RANK[m[2] as keyof typeof RANK]))
    }
  }
  await sh(join(BIN, 'changeset'), ['version'], scratch, 120_000, process.env)
  t.same(readdirSync(join(scratch, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md'), [], `changeset version consumed the ${pending.length} changesets`)
  for (const p of PUBLIC) {
    const pkg = JSON.parse(readFileSync(join(scratch, 'packages', p, 'package.json'), 'utf8'))
    const before = JSON.parse(readFileSync(join(ROOT, 'packages', p, 'package.json'), 'utf8'))
    const log = readFileSync(join(scratch, 'packages', p, 'CHANGELOG.md'), 'utf8')
    if (pending.length > 0) {
      t.not(pkg.version, before.version, `@headroom/${p}: ${before.version} -> ${pkg.version}`)
      // changesets makes a dependent major when a peer dependency leaves its range
      // (on 0.x every minor of core leaves ^0.x): a release must not do that unasked
      const [a, b] = [before.version, pkg.version].map((v: string) => v.split('.').map(Number)) as [number[], number[]]
      const made = a[0] !== b[0] ? RANK.major : a[1] !== b[1] ? RANK.minor : RANK.patch
      t.ok(made <= (asked.get(`@headroom/${p}`) ?? RANK.patch), `@headroom/${p}: ${before.version} -> ${pkg.version} is no larger a bump than its changesets ask for`)
      t.match(log, new RegExp(`^# @headroom/${p}\\n\\n## ${pkg.version.replace(/\./g, '\\.')}\\n`), `@headroom/${p}: CHANGELOG.md has ${pkg.version}`)
    }
    // a peer range on core that a release would break is a major of every plugin: the range must still hold
    for (const [name, range] of Object.entries({ ...pkg.dependencies, ...pkg.peerDependencies } as Record<string, string>)) {
      if (name.startsWith('@headroom/')) t.match(range, /^workspace:/, `@headroom/${p}: ${name} stays a workspace range (pnpm publish writes the version)`)
    }
  }
  const { stdout, stderr } = await sh('pnpm', ['publish', '-r', '--dry-run', '--no-git-checks'], ROOT, 180_000, process.env)
  const published = [...`${stdout}\n${stderr}`.matchAll(/📦 (\S+)@/g)].map((m) => m[1]).sort()
  t.same(published, PUBLIC.map((p) => `@headroom/${p}`).sort(), 'pnpm publish -r would publish the six public packages and nothing private')
  for (const name of PRIVATE) t.notOk(published.includes(name), `${name} is not published`)
})
