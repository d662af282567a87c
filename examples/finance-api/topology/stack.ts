import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  freePort, guardExit, PRIVATE_DIR_PREFIX, startPostgres, startRedis, startRedisCluster, startReplica, waitFor,
  type PrivatePostgres, type PrivateRedis, type PrivateRedisCluster, type PrivateReplica, type TestContext
} from '@headroom/testing'
import { migrate } from '../src/migrate.js'
import { startNginx, type Nginx } from './nginx.js'

/** examples/finance-api: `node dist/server.js` runs here, as the image runs it. */
export const APP_DIR = fileURLToPath(new URL('../', import.meta.url))

/**
 * A TestContext for a plain script: teardowns run in reverse order, each
 * awaited, errors reported and not stopping the others.
 */
export class Teardowns implements TestContext {
  readonly #fns: Array<() => unknown> = []
  teardown (fn: () => unknown): void { this.#fns.push(fn) }
  async run (): Promise<void> {
    for (const fn of this.#fns.splice(0).reverse()) {
      try {
        await fn()
      } catch (err) {
        console.error('teardown:', (err as Error).message)
      }
    }
  }
}

/** A temp directory under the private-server prefix (`.ci/run` checks none is left). */
export function tempDir (t: TestContext, kind: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${PRIVATE_DIR_PREFIX}${kind}-`))
  const remove = () => rmSync(dir, { recursive: true, force: true })
  const unguard = guardExit(remove)
  t.teardown(() => { unguard(); remove() })
  return dir
}

function get (url: string, timeoutMs = 1000): Promise<{ status: number, body: string }> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.once('timeout', () => req.destroy())
    req.once('error', () => resolve({ status: 0, body: '' }))
    req.end()
  })
}

/**
 * One `node dist/server.js` on a fixed loopback port (the same port across
 * restarts: it is in nginx's upstream list). An exit the test did not ask
 * for is counted as a crash.
 */
export class Instance {
  readonly name: string
  readonly port: number
  readonly address: string
  readonly #env: NodeJS.ProcessEnv
  readonly #logFile: string
  #child: ChildProcess | null = null
  #expectExit = false
  #exited: Promise<number | null> = Promise.resolve(null)
  /** exits nobody asked for */
  crashes: Array<{ at: number, code: number | null, signal: string | null }> = []

  constructor (t: TestContext, name: string, port: number, env: NodeJS.ProcessEnv, logDir: string) {
    this.name = name
    this.port = port
    this.address = `127.0.0.1:${port}`
    this.#env = env
    this.#logFile = join(logDir, `${name}.log`)
    const unguard = guardExit(() => { this.#child?.kill('SIGKILL') })
    t.teardown(async () => {
      unguard()
      await this.kill()
    })
  }

  get running (): boolean { return this.#child !== null }

  /** Spawns the production build and waits until /health/ready answers 200. */
  async start (timeoutMs = 60_000): Promise<void> {
    if (this.#child) throw new Error(`${this.name} is already running`)
    const log = createWriteStream(this.#logFile, { flags: 'a' })
    // what `pnpm start:prod` runs
    const child = spawn(process.execPath, ['--enable-source-maps', join(APP_DIR, 'dist', 'server.js')], {
      cwd: APP_DIR,
      env: { ...this.#env, PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    child.stdout!.pipe(log)
    child.stderr!.pipe(log)
    this.#child = child
    this.#expectExit = false
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (this.#child === child) this.#child = null
        if (!this.#expectExit) this.crashes.push({ at: Date.now(), code, signal })
        resolve(code)
      })
    })
    await waitFor(`${this.name} to be ready`, async () => {
      if (this.#child !== child) throw new Error(`${this.name} exited at start (see ${this.#logFile})`)
      return (await get(`http://${this.address}/health/ready`)).status === 200
    }, timeoutMs, 100)
  }

  /** Readiness says `pass`: no fallback active, no replica ejected (`warn` is ready but degraded). */
  async healthy (): Promise<boolean> {
    const r = await get(`http://${this.address}/health/ready`)
    return r.status === 200 && (JSON.parse(r.body) as { status?: string }).status === 'pass'
  }

  /** SIGTERM: the drain (readiness fails, DRAIN_DELAY_MS more of serving, close); resolves with the exit code. */
  async terminate (timeoutMs = 30_000): Promise<number | null> {
    const child = this.#child
    if (!child) return null
    this.#expectExit = true
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    const code = await this.#exited
    clearTimeout(timer)
    return code
  }

  /** SIGKILL, as an OOM kill or a lost node would do. */
  async kill (): Promise<void> {
    const child = this.#child
    if (!child) return
    this.#expectExit = true
    child.kill('SIGKILL')
    await this.#exited
  }
}

export interface StackOptions {
  /** environment of every instance on top of what the stack sets (rate limits, latencies, ...) */
  env: Record<string, string>
  /** Redis Cluster (true) or one redis-server: REDIS_URL can only name a cluster once the app supports it */
  cluster: boolean
  /** TRUST_PROXY value naming nginx (an address), or 'true' where the app only knows true/false */
  trustProxy: string
}

export interface Stack {
  dir: string
  primary: PrivatePostgres
  replicas: [PrivateReplica, PrivateReplica]
  /** null when the app cannot name a cluster: then `standaloneRedis` */
  redis: PrivateRedisCluster | null
  standaloneRedis: PrivateRedis | null
  instances: Instance[]
  nginx: Nginx
  /** a new instance on a new port (not yet in nginx's list) */
  addInstance (name: string): Promise<Instance>
}

/**
 * PostgreSQL primary + two streaming replicas, a Redis Cluster of 3 masters
 * and 3 replicas, three instances of the production build, nginx with the
 * repository's configuration in front. Everything on loopback, everything
 * torn down by `t`.
 */
export async function startStack (t: TestContext, options: StackOptions): Promise<Stack> {
  const dir = tempDir(t, 'topology')
  // three or four instances, each up to 25 primary connections: room above that
  const primary = await startPostgres(t, { settings: { max_connections: 250 } })
  // the schema before the replicas are cloned: they start with it
  const replicas: [PrivateReplica, PrivateReplica] = [await startReplica(t, primary), await startReplica(t, primary)]
  // as deploy/compose.yaml runs its nodes: a dead master's slots fail alone, the others keep serving
  const redis = options.cluster ? await startRedisCluster(t, { masters: 3, replicas: 1, args: ['--cluster-require-full-coverage', 'no'] }) : null
  const standaloneRedis = redis === null ? await startRedis(t) : null
  const redisUrl = redis !== null
    ? `redis+cluster://${redis.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
    : standaloneRedis!.url

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DATABASE_URL: primary.url,
    DATABASE_REPLICA_URLS: replicas.map((r) => r.url).join(','),
    REDIS_URL: redisUrl,
    SESSION_SECRET: 'topology-test-secret-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2),
    TRUST_PROXY: options.trustProxy,
    ...options.env
  }
  const instances: Instance[] = []
  const addInstance = async (name: string) => {
    const instance = new Instance(t, name, await freePort(), env, dir)
    instances.push(instance)
    await instance.start()
    return instance
  }
  // the migrations as a deploy runs them: a step before the instances, which
  // only check the schema version (MIGRATE_ON_START is false with DATABASE_URL)
  await migrate(primary.url)
  for (const name of ['app-1', 'app-2', 'app-3']) await addInstance(name)
  await Promise.all(replicas.map((r) => r.caughtUp()))

  const nginxDir = join(dir, 'nginx')
  mkdirSync(nginxDir)
  // nginx's workers (nobody, when the test runs as root) must reach the cache and temp paths inside
  chmodSync(dir, 0o755)
  const nginx = await startNginx(t, nginxDir, await freePort(), await freePort(),
    [instances[0]!.address, instances[1]!.address, instances[2]!.address])
  return { dir, primary, replicas, redis, standaloneRedis, instances, nginx, addInstance }
}
