import t from 'tap'
import { startRedisCluster, waitFor, sleep } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp, clusterClient, engineOf } from './helpers.js'

const COMMAND_TIMEOUT_MS = 250
const KEYS = 40

/** the port of the master that serves `key`'s slot, asked of the node on `port` */
async function masterOf (port: number, key: string): Promise<number> {
  const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0 })
  try {
    const slot = await admin.cluster('KEYSLOT', key) as number
    const range = (await admin.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to)!
    return Number(range[2]![1])
  } finally {
    admin.disconnect()
  }
}

t.test('a master killed under load, its replica promoted: zero 5xx, no stale value after an acknowledged invalidation, both L1s resynchronised', async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3, replicas: 1 })
  // the source of truth: quote id -> version
  const source = new Map(Array.from({ length: KEYS }, (_v, i) => [`q${i}`, 1]))
  let serverSlowest = 0
  const build = async (): Promise<{ app: FastifyInstance, base: string }> => {
    const app = await buildApp(t, { redis: await clusterClient(t, cluster.startupNodes), commandTimeoutMs: COMMAND_TIMEOUT_MS, resetTimeoutMs: 250, waitForReplicas: 1 }, (app) => {
      app.addHook('onResponse', async (_request, reply) => { serverSlowest = Math.max(serverSlowest, reply.elapsedTime) })
      app.get<{ Params: { id: string } }>('/quotes/:id', async (request) => {
        const id = request.params.id
        return app.cache.wrap(`quote:${id}`, () => ({ id, v: source.get(id) }))
      })
    })
    return { app, base: await app.listen({ port: 0, host: '127.0.0.1' }) }
  }
  const instances = [await build(), await build()]
  // how often each L1 is dropped: once for the lost master (and once if the bus itself was on it), not on every reconnect attempt
  const resyncs = instances.map(({ app }) => {
    const engine = engineOf(app)
    const counter = { n: 0 }
    const onResync = engine.onResync.bind(engine)
    engine.onResync = () => { counter.n++; onResync() }
    return counter
  })
  const [a, b] = instances as [typeof instances[0], typeof instances[0]]

  // both L1s hold every quote at version 1
  for (const { base } of instances) {
    for (let i = 0; i < KEYS; i++) await (await fetch(`${base}/quotes/q${i}`)).arrayBuffer()
  }
  // an entry no worker asks for: it leaves both L1s only if they are cleared after the node loss
  for (const { base } of instances) await (await fetch(`${base}/quotes/idle`)).arrayBuffer()
  const idleKey = 'default|s|quote:idle'
  t.ok(instances.every(({ app }) => engineOf(app).l1.keys().includes(idleKey)), 'both L1s hold the idle entry')
  const watched = 'q0'
  const watchedKey = `default|s|quote:${watched}`
  t.ok(engineOf(b.app).l1.get(watchedKey, Date.now())?.raw.includes('"v":1'), 'b holds the watched quote in L1')

  let requests = 0
  let fiveXX = 0
  let staleFromA = 0
  let staleFromB = 0
  let ackAt = Infinity
  let bDroppedAt = Infinity
  let killedAt = Infinity
  let healthyAt = Infinity
  let slowestDuringFailover = 0
  const run = { stopped: false }
  const hardStop = performance.now() + 30_000
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !run.stopped && performance.now() < hardStop; i++) {
      const { base } = instances[(w + i) % 2]!
      const id = i % 4 === 0 ? watched : `q${(w * 7 + i) % KEYS}`
      const started = performance.now()
      const res = await fetch(`${base}/quotes/${id}`)
      const body = await res.json() as { v: number }
      const elapsed = performance.now() - started
      requests++
      if (res.status >= 500) fiveXX++
      if (started > killedAt && started < healthyAt) slowestDuringFailover = Math.max(slowestDuringFailover, elapsed)
      if (id === watched && body.v === 1) {
        if (base === a.base && started > ackAt) staleFromA++
        if (base === b.base && started > bDroppedAt) staleFromB++
      }
    }
  }
  const load = Promise.all(Array.from({ length: 4 }, (_v, w) => worker(w)))
  await sleep(300)

  // write the source, invalidate through a, and kill the master of that key right after the acknowledgement
  const victimPort = await masterOf(cluster.nodes[0]!.port, engineOf(a.app).l2!.entryKey(watchedKey))
  const victim = cluster.nodes.find((n) => n.port === victimPort)!
  source.set(watched, 2)
  await a.app.cache.delete(`quote:${watched}`)
  ackAt = performance.now()
  // WAIT gets half the command timeout; beside another test file on 2 cores
  // the first one fell short once (CI), and the replay queue repeated the
  // delete and its WAIT: the kill waits until a replica holds the delete, or
  // a failover could lose it by design (asynchronous replication)
  await waitFor('a replica holds the invalidation (waitForReplicas: 1)', async () => a.app.cache.stats().pendingReplay === 0, 10_000, 5)
  t.pass('the invalidation was acknowledged by a replica too (waitForReplicas: 1)')
  const bDropped = waitFor('b dropped the old value from L1', async () =>
    engineOf(b.app).l1.get(watchedKey, Date.now())?.raw.includes('"v":1') !== true, 10_000, 1).then(() => { bDroppedAt = performance.now() })
  killedAt = performance.now()
  await victim.kill()
  await cluster.healthy(30_000)
  healthyAt = performance.now()
  const promoted = (await cluster.roles()).filter((r) => r.role === 'master').length
  await bDropped
  // steady load for a while on the promoted topology, then stop
  await sleep(1000)
  run.stopped = true
  await load

  t.comment(`failover: ${requests} requests, ${fiveXX} 5xx, longest request during the failover ${slowestDuringFailover.toFixed(0)} ms ` +
    `(server side, whole run: ${serverSlowest.toFixed(0)} ms), replica promoted after ${(healthyAt - killedAt).toFixed(0)} ms, ` +
    `b dropped the invalidated value ${(bDroppedAt - ackAt).toFixed(1)} ms after the acknowledgement`)
  t.equal(promoted, 3, 'three masters again: the replica was promoted by the cluster')
  t.equal(fiveXX, 0, 'zero 5xx')
  t.equal(staleFromA, 0, 'a served no stale value after its invalidation was acknowledged')
  t.equal(staleFromB, 0, 'b served no stale value once its L1 had dropped it')
  t.ok(bDroppedAt - ackAt < 2000, 'b dropped it within 2 s of the acknowledgement (bus, or the lost node)')
  // the server's own time per request, bounded by the command timeout (an L2 read, then the source) plus slack for a loaded machine
  t.ok(serverSlowest <= 2 * COMMAND_TIMEOUT_MS + 1000, `longest request ${serverSlowest.toFixed(0)} ms (server side)`)

  t.notOk(instances.some(({ app }) => engineOf(app).l1.keys().includes(idleKey)), 'both L1s were cleared after the failover (messages may have been lost)')
  for (const [i, { n }] of resyncs.entries()) t.ok(n >= 1 && n <= 2, `instance ${i}: L1 dropped ${n} times for one lost master (not on every reconnect attempt)`)
  // resynchronised: both buses are up, and an invalidation after the failover reaches the other L1
  await waitFor('both buses connected', async () => engineOf(a.app).bus!.connected && engineOf(b.app).bus!.connected, 10_000)
  for (const { base } of instances) t.equal((await (await fetch(`${base}/quotes/${watched}`)).json() as { v: number }).v, 2, 'the new value everywhere')
  source.set('q1', 2)
  await (await fetch(`${b.base}/quotes/q1`)).arrayBuffer()
  await a.app.cache.delete('quote:q1')
  await waitFor('b dropped q1 over the bus', async () => engineOf(b.app).l1.get('default|s|quote:q1', Date.now()) === undefined, 2000, 1)
  t.equal((await (await fetch(`${b.base}/quotes/q1`)).json() as { v: number }).v, 2, 'b reads the new q1')
})
