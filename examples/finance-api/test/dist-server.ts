import { spawn, execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { TestContext } from '@headroom/testing'

export const run = promisify(execFile)
export const EXAMPLE_DIR = fileURLToPath(new URL('..', import.meta.url))
/** the compiled server */
export const DIST_SERVER = join(EXAMPLE_DIR, 'dist/server.js')

// once per file, incremental: a no-op when the workspace build is current
let built: Promise<unknown> | undefined
export const build = () => (built ??= run('pnpm', ['--filter', 'finance-api', 'build'], { cwd: EXAMPLE_DIR, timeout: 120_000 }))

/**
 * `node dist/server.js` as production runs it: compiled JavaScript, no tsx,
 * started from a directory that is not the example's (a container's WORKDIR
 * need not be), so the migrations and static files must be found next to
 * the compiled file. SIGTERM ends it through the drain.
 */
export async function runServer (t: TestContext, entry: string, env: Record<string, string>, listenTimeoutMs = 60_000) {
  const cwd = mkdtempSync(join(tmpdir(), 'finance-api-cwd-'))
  const child = spawn(process.execPath, ['--enable-source-maps', entry], {
    cwd,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', MIGRATE_ON_START: 'true', ...env },
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
    const timer = setTimeout(() => reject(new Error(`no "Server listening" within ${listenTimeoutMs} ms:\n${output}`)), listenTimeoutMs)
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
    /** everything the server printed so far, stdout and stderr */
    output: () => output,
    async stop () {
      child.kill('SIGTERM')
      return exited
    }
  }
}
