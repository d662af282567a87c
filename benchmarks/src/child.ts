import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'

export interface ServerHandle {
  url: string
  close (): Promise<void>
}

const childEntry = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './server-child.ts' : './server-child.js', import.meta.url))

/**
 * On a machine with two or more cores the load generator (this process) is
 * pinned to the first core and every server to the second, so a variant's
 * figure never depends on where the scheduler happened to put it. Where
 * taskset is missing the processes float, and the A B A B alternation is the
 * only defence against drift.
 */
function pin (pid: number, cpu: number): void {
  if (process.platform !== 'linux' || cpus().length < 2 || process.env.BENCH_NO_PIN) return
  try {
    execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' })
  } catch { /* taskset missing: unpinned */ }
}

export function pinHarness (): void {
  pin(process.pid, 0)
}

/** Forks a server module into its own process (TypeScript through tsx) and waits until it listens. */
export function startServer (module: string | URL, env: Record<string, string>, timeoutMs = 60_000): Promise<ServerHandle> {
  const target = module instanceof URL ? module.href : module
  const child: ChildProcess = fork(childEntry, [target], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  if (child.pid !== undefined) pin(child.pid, 1)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server ${target} did not listen within ${timeoutMs} ms`))
    }, timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server ${target} exited with code ${code} before listening`))
    })
    child.on('message', (msg: { type?: string, url?: string }) => {
      if (msg.type !== 'listening' || !msg.url) return
      clearTimeout(timer)
      child.removeAllListeners('exit')
      resolve({
        url: msg.url,
        close: () => new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
          child.once('exit', () => { clearTimeout(kill); resolve() })
          child.send({ type: 'close' })
        })
      })
    })
  })
}
