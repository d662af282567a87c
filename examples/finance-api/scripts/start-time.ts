/**
 * Where the time of `pnpm start` goes, measured on the real command: a cold
 * start (as on a fresh clone after `pnpm install`: no dist/ anywhere in the
 * build graph, tsx's transform cache empty, a new PGlite data directory) and
 * a warm one (the same again: tsx's cache filled, the data directory kept).
 * Phases come from the server's startup log line (server.ts) and the time
 * each line is seen.
 *
 *   pnpm --filter finance-api start-time                    # cold, then warm
 *   pnpm --filter finance-api start-time -- --warm          # warm only (builds first)
 *   pnpm --filter finance-api start-time -- --memory        # PGlite in memory (PGLITE_DATA_DIR empty)
 *
 * `pnpm start` runs the sources through tsx (tsconfig.dev.json maps the
 * @headroom packages to their src/), so no build precedes it. The cold run
 * cleans the build output (`tsc -b --clean`) to prove it, and builds it again
 * at the end: do not run it while tests use dist/.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const EXAMPLE_DIR = fileURLToPath(new URL('..', import.meta.url))
const LISTENING = /Server listening at/
const TIMEOUT_MS = 180_000

interface Startup { processStartedAt: number, bootMs: number, embeddedMs: number, migrateMs: number, appMs: number }
export interface Phases { build: number, imports: number, database: number, migrations: number, app: number, listen: number, total: number }

/** One `pnpm start`, until its listening line; then SIGTERM. */
async function measure (env: Record<string, string>): Promise<Phases> {
  const spawnedAt = Date.now()
  const child = spawn('pnpm', ['start'], { cwd: EXAMPLE_DIR, env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', NODE_ENV: 'development', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  let startup: Startup | undefined
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    const listenedAt = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line within ${TIMEOUT_MS / 1000} s:\n${output}`)), TIMEOUT_MS)
      child.stderr.on('data', (d) => { output += d })
      child.stdout.on('data', (d: Buffer) => {
        const seen = Date.now()
        for (const line of d.toString().split('\n')) {
          output += `${line}\n`
          if (!line.startsWith('{')) continue
          const entry = JSON.parse(line) as { msg?: string, startup?: Startup }
          if (entry.startup) startup = entry.startup
          if (LISTENING.test(entry.msg ?? '')) {
            clearTimeout(timer)
            resolve(seen)
          }
        }
      })
      child.once('exit', (code) => reject(new Error(`pnpm start exited with ${code}:\n${output}`)))
    })
    if (!startup) throw new Error(`no startup line (server.ts) in:\n${output}`)
    const ready = startup.processStartedAt + startup.bootMs + startup.embeddedMs + startup.migrateMs + startup.appMs
    return {
      build: startup.processStartedAt - spawnedAt,
      imports: startup.bootMs,
      database: startup.embeddedMs,
      migrations: startup.migrateMs,
      app: startup.appMs,
      listen: listenedAt - ready,
      total: listenedAt - spawnedAt
    }
  } finally {
    // the whole group: pnpm, and the node it started
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM')
    await exited
  }
}

const LABELS: Record<keyof Phases, string> = {
  build: 'pnpm (until node starts)',
  imports: 'node: loading the modules (tsx transforms)',
  database: 'PGlite start-up',
  migrations: 'migrations (and the version check)',
  app: 'app build (plugins, Redis, pool)',
  listen: 'listen (and logging)',
  total: 'first listening line'
}

function table (runs: Array<[string, Phases]>): string {
  const header = `| phase | ${runs.map(([name]) => name).join(' | ')} |`
  const rule = `|---|${runs.map(() => '---:').join('|')}|`
  const rows = (Object.keys(LABELS) as Array<keyof Phases>).map((k) => `| ${LABELS[k]} | ${runs.map(([, p]) => `${(p[k] / 1000).toFixed(2)} s`).join(' | ')} |`)
  return [header, rule, ...rows].join('\n')
}

async function main () {
  const args = new Set(process.argv.slice(2))
  const memory = args.has('--memory')
  const dataDir = mkdtempSync(join(tmpdir(), 'finance-start-time-'))
  // a new data directory, as .env.development's .pglite/ on a fresh clone (empty: in memory)
  const env: Record<string, string> = { PGLITE_DATA_DIR: memory ? '' : join(dataDir, 'pglite') }
  const runs: Array<[string, Phases]> = []
  let cleaned = false
  const load = () => loadavg().map((l) => l.toFixed(1)).join(' ')
  try {
    if (!args.has('--warm')) {
      execFileSync('pnpm', ['exec', 'tsc', '-b', '--clean'], { cwd: EXAMPLE_DIR, stdio: 'inherit' })
      // tsx caches its transforms in <tmpdir>/tsx-<uid>; a fresh machine has none
      rmSync(join(tmpdir(), `tsx-${userInfo().uid}`), { recursive: true, force: true })
      cleaned = true
      console.error(`cold start (load average ${load()})…`)
      runs.push(['cold', await measure(env)])
    }
    console.error(`warm start (load average ${load()})…`)
    runs.push(['warm', await measure(env)])
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
    // what the tests and `start:prod` need, cleaned above for the cold run
    if (cleaned) execFileSync('pnpm', ['exec', 'tsc', '-b'], { cwd: EXAMPLE_DIR, stdio: 'inherit' })
  }
  console.log(table(runs))
  console.log(`\nPGlite: ${memory ? 'in memory' : 'a new data directory, kept from the cold run to the warm one (as .env.development does)'}; ${execFileSync('nproc').toString().trim()} cores, load average ${load()} (1, 5, 15 min) at the end`)
}

await main()
