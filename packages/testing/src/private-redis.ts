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

export interface PrivateRedisClusterOptions extends PrivateRedisOptions {
  /** masters, each owning an equal share of the slots (default 3) */
  masters?: number
  /** replicas per master (default 0); with replicas, killing a master makes the cluster promote one */
  replicas?: number
}

export interface PrivateRedisCluster {
  /** every node, masters first in creation order (roles change after a failover: ask `roles()`) */
  readonly nodes: PrivateRedis[]
  /** `[{ host, port }]`, what `new Cluster(startupNodes)` takes */
  readonly startupNodes: Array<{ host: string, port: number }>
  /** a cluster client that is disconnected at teardown */
  client (): Cluster
  /** each reachable node's current role and, for a replica, the port of its master */
  roles (): Promise<Array<{ node: PrivateRedis, role: 'master' | 'slave', masterPort?: number }>>
  /** resolves once every slot is served by a reachable master (after a kill, once a replica was promoted) */
  healthy (timeoutMs?: number): Promise<void>
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
      // the exit guard stays until the directory is gone: a process that exits
      // while this awaits (a runner's process.exit, a signal) still cleans up
      try {
        await stopChild('SIGKILL')
      } finally {
        rmSync(baseDir, { recursive: true, force: true })
        unguard()
      }
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
 * Asked of the node on `port` alone: `CLUSTER INFO` says ok and every one of
 * the 16384 slots is served by a master in `running` (a killed master still
 * owns its slots until the others notice, after the node timeout).
 */
async function clusterOk (port: number, running: Set<number>): Promise<boolean> {
  const c = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000 })
  try {
    await c.connect()
    if (!String(await c.cluster('INFO')).includes('cluster_state:ok')) return false
    let covered = 0
    for (const [from, to, master] of await c.cluster('SLOTS')) {
      if (master === undefined || !running.has(Number(master[1]))) return false
      covered += to - from + 1
    }
    return covered === 16384
  } finally {
    c.disconnect()
  }
}

/**
 * A Redis Cluster of `masters` (default 3) masters with `replicas` (default 0)
 * replicas each, all slots assigned, `cluster_state:ok` and every replica in
 * sync before it resolves.
 */
export async function startRedisCluster (t: TestContext, options: PrivateRedisClusterOptions = {}): Promise<PrivateRedisCluster> {
  const masters = options.masters ?? 3
  const replicas = options.replicas ?? 0
  const baseDir = mkdtempSync(join(tmpdir(), `${PRIVATE_DIR_PREFIX}redis-cluster-`))
  const nodes: PrivateRedis[] = []
  const clients: Cluster[] = []
  // ports picked here are free now, but only bound when the nodes start: a node must not take
  // another's bus port (port + 10000), nor the other way round
  const taken = new Set<number>()
  for (let i = 0; i < masters * (1 + replicas); i++) {
    // the cluster bus listens on port + 10000
    let port = await freePortPair(10_000)
    while (taken.has(port) || taken.has(port + 10_000)) port = await freePortPair(10_000)
    taken.add(port).add(port + 10_000)
    nodes.push(redisServer(t, baseDir, port, [
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(baseDir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '2000',
      ...(options.args ?? [])
    ]))
  }
  await Promise.all(nodes.map((n) => n.start()))
  // redis-cli makes the first `masters` nodes masters and gives each the next replicas in turn
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'])

  const cluster: PrivateRedisCluster = {
    nodes,
    startupNodes: nodes.map((n) => ({ host: n.host, port: n.port })),
    client () {
      const c = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } })
      clients.push(c)
      return c
    },
    async roles () {
      const out: Array<{ node: PrivateRedis, role: 'master' | 'slave', masterPort?: number }> = []
      for (const node of nodes) {
        if (node.pid() === null) continue
        const c = new Redis(node.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000 })
        try {
          await c.connect()
          const role = await c.role() as unknown[]
          if (role[0] === 'master') out.push({ node, role: 'master' })
          else out.push({ node, role: 'slave', masterPort: Number(role[2]) })
        } catch { /* unreachable right now: not listed */ } finally {
          c.disconnect()
        }
      }
      return out
    },
    async healthy (timeoutMs = 30_000) {
      await waitFor('cluster_state:ok on every running node', async () => {
        const running = nodes.filter((n) => n.pid() !== null)
        const ports = new Set(running.map((n) => n.port))
        const states = await Promise.all(running.map((n) => clusterOk(n.port, ports)))
        return states.every(Boolean)
      }, timeoutMs, 100)
    },
    async destroy () {
      await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())))
      await Promise.all(nodes.map((n) => n.destroy()))
      rmSync(baseDir, { recursive: true, force: true })
    }
  }
  // destroy() closes the clients before the nodes; each node's own teardown is idempotent
  t.teardown(() => cluster.destroy())

  await cluster.healthy(20_000)
  if (replicas > 0) {
    await waitFor('every replica in sync with its master', async () => {
      const states = await Promise.all(nodes.map(async (n) => {
        const c = new Redis(n.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 })
        try {
          await c.connect()
          const info = await c.info('replication')
          return info.includes('role:master') || info.includes('master_link_status:up')
        } finally {
          c.disconnect()
        }
      }))
      return states.every(Boolean)
    }, 30_000, 100)
  }
  return cluster
}
