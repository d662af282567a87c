import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, type Plugin } from 'esbuild'

export interface ServerHandle {
  url: string
  close (): Promise<void>
}

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

/**
 * Keeps `import.meta.url` meaning the source file it was written in once
 * the file is bundled elsewhere (e.g. `new URL('../migrations/', import.meta.url)`).
 */
const sourceUrls: Plugin = {
  name: 'source-import-meta-url',
  setup (b) {
    b.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => ({
      contents: (await readFile(args.path, 'utf8')).replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
      loader: 'ts'
    }))
  }
}

/** One server module to one ESM file: TypeScript compiled, npm and workspace packages left as imports, `import.meta.url` kept the source's. */
export async function bundleModule (entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    logLevel: 'silent',
    plugins: [sourceUrls]
  })
}

const compiled = new Map<string, Promise<string>>()
const written: string[] = []
process.once('exit', () => { for (const f of written) rmSync(f, { force: true }) })

/**
 * Servers run as JavaScript on plain Node, as in production, not through tsx,
 * under whose loader the slow-process state of benchmarks/README.md came far
 * more often. Each module is bundled once per run with its TypeScript
 * sources, its npm dependencies and workspace packages left as imports
 * (workspace packages load from their built `dist/`), next to the source so
 * those imports resolve from the same place, and removed when the harness exits.
 */
function compile (file: string): Promise<string> {
  let done = compiled.get(file)
  if (done === undefined) {
    const outfile = join(dirname(file), `.bench-${basename(file).replace(/\.[cm]?[tj]s$/, '')}-${process.pid}.mjs`)
    written.push(outfile)
    done = bundleModule(resolve(file), outfile).then(() => outfile)
    compiled.set(file, done)
  }
  return done
}

const childSource = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './server-child.ts' : './server-child.js', import.meta.url))

/** Forks a server module into its own process (compiled to JavaScript, plain Node) and waits until it listens. */
export async function startServer (module: string | URL, env: Record<string, string>, timeoutMs = 60_000): Promise<ServerHandle> {
  const target = module instanceof URL ? module.href : module
  const [entry, server] = await Promise.all([compile(childSource), compile(target.startsWith('file:') ? fileURLToPath(target) : target)])
  const child: ChildProcess = fork(entry, [server], {
    execArgv: [],
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
