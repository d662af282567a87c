import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'
import { freePort, freePortPair } from './ports.js'
import { isListening, run, waitFor } from './process.js'
import { PRIVATE_DIR_PREFIX } from './private-postgres.js'
import { guardExit, type TestContext } from './teardown.js'

export interface PrivateRedisOptions {
  /** extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']` */
  args?: string[]
}

export interface PrivateRedis {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  readonly baseDir: string
  pid (): number | null
  /** SHUTDOWN NOSAVE-like clean stop (SIGTERM) */
  stop (): Promise<void>
  /** SIGKILL, as a crash would do; the data is gone (no persistence) */
  kill (): Promise<void>
  /** starts it again on the same port */
  start (): Promise<void>
  restart (): Promise<void>
  destroy (): Promise<void>
}

export interface PrivateRedisCluster {
  readonly nodes: PrivateRedis[]
  /** `[{ host, port }]`, what `new Cluster(startupNodes)` takes */
  readonly startupNodes: Array<{ host: string, port: number }>
  /** a cluster client that is disconnected at teardown */
  client (): Cluster
  destroy (): Promise<void>
}

function redisServer (t: TestContext, baseDir: string, port: number, args: string[]): PrivateRedis {
  let child: ChildProcess | null = null
  let destroyed = false

  const startChild = async () => {
    const proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', baseDir, '--daemonize', 'no', '--logfile', join(baseDir, `redis-${port}.log`),
      ...args
    ], { stdio: 'ignore' })
    child = proc
    proc.once('exit', () => { if (child === proc) child = null })
    await waitFor(`redis-server on ${port}`, async () => {
      if (child !== proc) throw new Error(`redis-server on ${port} exited at start`)
      return isListening(port)
    })
  }

  const stopChild = async (signal: NodeJS.Signals) => {
    const proc = child
    if (!proc) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(signal)
    await exited
    await waitFor(`port ${port} to close`, async () => !(await isListening(port)))
  }

  const server: PrivateRedis = {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    baseDir,
    pid: () => child?.pid ?? null,
    stop: () => stopChild('SIGTERM'),
    kill: () => stopChild('SIGKILL'),
    async start () {
      if (child === null) await startChild()
    },
    async restart () {
      await server.stop()
      await server.start()
    },
    async destroy () {
      if (destroyed) return
      destroyed = true
      unguard()
      await stopChild('SIGKILL')
      rmSync(baseDir, { recursive: true, force: true })
    }
  }
  const unguard = guardExit(() => {
    child?.kill('SIGKILL')
    rmSync(baseDir, { recursive: true, force: true })
  })
  t.teardown(() => server.destroy())
  return server
}

/**
 * A redis-server of its own on a free port, no persistence. The test may kill
 * and restart it; teardown (or process exit) always kills it and removes its
 * directory.
 */
export async function startRedis (t: TestContext, options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const baseDir = mkdtempSync(join(tmpdir(), `${PRIVATE_DIR_PREFIX}redis-`))
  const server = redisServer(t, baseDir, await freePort(), options.args ?? [])
  await server.start()
  return server
}

/**
 * A Redis Cluster of `masters` (default 3) masters and no replicas, all slots
 * assigned and `cluster_state:ok` before it resolves.
 */
export async function startRedisCluster (t: TestContext, options: PrivateRedisOptions & { masters?: number } = {}): Promise<PrivateRedisCluster> {
  const masters = options.masters ?? 3
  const baseDir = mkdtempSync(join(tmpdir(), `${PRIVATE_DIR_PREFIX}redis-cluster-`))
  const nodes: PrivateRedis[] = []
  const clients: Cluster[] = []
  for (let i = 0; i < masters; i++) {
    // the cluster bus listens on port + 10000
    const port = await freePortPair(10_000)
    nodes.push(redisServer(t, baseDir, port, [
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(baseDir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '2000',
      ...(options.args ?? [])
    ]))
  }
  await Promise.all(nodes.map((n) => n.start()))
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  await waitFor('cluster_state:ok on every node', async () => {
    const states = await Promise.all(nodes.map(async (n) => {
      const c = new Redis(n.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 })
      try {
        await c.connect()
        return String(await c.cluster('INFO')).includes('cluster_state:ok')
      } finally {
        c.disconnect()
      }
    }))
    return states.every(Boolean)
  }, 20_000, 100)

  const cluster: PrivateRedisCluster = {
    nodes,
    startupNodes: nodes.map((n) => ({ host: n.host, port: n.port })),
    client () {
      const c = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } })
      clients.push(c)
      return c
    },
    async destroy () {
      await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())))
      await Promise.all(nodes.map((n) => n.destroy()))
      rmSync(baseDir, { recursive: true, force: true })
    }
  }
  // destroy() closes the clients before the nodes; each node's own teardown is idempotent
  t.teardown(() => cluster.destroy())
  return cluster
}
