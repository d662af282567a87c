import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'

export interface RunOptions {
  /** run as the `postgres` OS user (PostgreSQL refuses to run as root) */
  asPostgres?: boolean
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

function command (file: string, args: string[], asPostgres: boolean): [string, string[]] {
  return asPostgres && isRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args]
}

/** Runs a command to completion; rejects with its output when it fails. */
export function run (file: string, args: string[], options: RunOptions = {}): Promise<string> {
  const [cmd, argv] = command(file, args, options.asPostgres ?? false)
  return new Promise((resolve, reject) => {
    // cwd: the postgres user may not be allowed into the caller's directory
    execFile(cmd, argv, { timeout: options.timeoutMs ?? 60_000, env: options.env ?? process.env, cwd: tmpdir() }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
      } else {
        resolve(stdout)
      }
    })
  })
}

/** The synchronous twin of run(), for exit handlers; never throws. */
export function runSync (file: string, args: string[], options: RunOptions = {}): void {
  const [cmd, argv] = command(file, args, options.asPostgres ?? false)
  try {
    execFileSync(cmd, argv, { timeout: options.timeoutMs ?? 15_000, stdio: 'ignore', cwd: tmpdir() })
  } catch { /* best effort */ }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (err) {
      lastError = err
    }
    await sleep(intervalMs)
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : ''
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`)
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function isListening (port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host })
    socket.setTimeout(1000)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(false))
  })
}

/** True while `pid` runs. A zombie (exited, not yet reaped by its parent) counts as gone. */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    // the state follows the parenthesised command name: "pid (comm) S ..."
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

let pgBinDir: string | undefined

/** The directory of PostgreSQL's server binaries (initdb, pg_ctl, ...): PG_BIN or the newest under /usr/lib/postgresql. */
export function pgBin (name: string): string {
  if (pgBinDir === undefined) {
    if (process.env.PG_BIN) {
      pgBinDir = process.env.PG_BIN
    } else {
      const root = '/usr/lib/postgresql'
      const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : []
      const found = versions.map((v) => `${root}/${v}/bin`).find((dir) => existsSync(`${dir}/initdb`))
      if (!found) throw new Error('PostgreSQL server binaries not found: install postgresql or set PG_BIN')
      pgBinDir = found
    }
  }
  return `${pgBinDir}/${name}`
}
