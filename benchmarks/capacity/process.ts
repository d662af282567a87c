/**
 * Starts the capacity run's server processes: main.ts bundled once as the
 * benchmark harness bundles its servers (bundleModule: packages left as
 * imports), into examples/finance-api/node_modules/.cache/ where those
 * imports resolve as they do for the example, then forked on plain Node with
 * NODE_ENV=production and pinned to core 1 with taskset (the load generator,
 * this process, to core 0), like the benchmark harness does.
 */
import { execFileSync, fork } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { cpus, setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'
import { bundleModule } from '../src/child.js'

export interface Server { url: string, pid: number, close (): Promise<void> }

const CACHE_DIR = fileURLToPath(new URL('../../examples/finance-api/node_modules/.cache/capacity/', import.meta.url))
let bundled: Promise<string> | undefined

export const pinned = process.platform === 'linux' && cpus().length >= 2

/** Niceness of the load generator and the app server: ahead of other work on a shared machine, when allowed (root). */
export const NICE = -5

export function pin (pid: number, cpu: number): void {
  try {
    setPriority(pid, NICE)
  } catch { /* not allowed: default priority */ }
  if (!pinned) return
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' })
}

function bundle (): Promise<string> {
  bundled ??= (async () => {
    mkdirSync(CACHE_DIR, { recursive: true })
    const outfile = `${CACHE_DIR}main-${process.pid}.mjs`
    process.once('exit', () => rmSync(outfile, { force: true }))
    await bundleModule(fileURLToPath(new URL('./main.ts', import.meta.url)), outfile)
    return outfile
  })()
  return bundled
}

/** `execArgv`: Node flags of the server process (profile.ts passes --cpu-prof). */
export async function startServer (env: Record<string, string>, timeoutMs = 60_000, execArgv: string[] = []): Promise<Server> {
  const entry = await bundle()
  const child = fork(entry, [], { execArgv, env: { ...process.env, NODE_ENV: 'production', ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  pin(child.pid!, 1)
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the ${env.CAPACITY_SERVER} server did not listen within ${timeoutMs} ms`)) }, timeoutMs)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the ${env.CAPACITY_SERVER} server exited with code ${code} before listening`)) })
    child.on('message', (msg: { type?: string, url?: string }) => {
      if (msg.type !== 'listening' || !msg.url) return
      clearTimeout(timer)
      child.removeAllListeners('exit')
      resolve(msg.url)
    })
  })
  return {
    url,
    pid: child.pid!,
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
      child.once('exit', () => { clearTimeout(kill); resolve() })
      child.send({ type: 'close' })
    })
  }
}
