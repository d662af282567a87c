import { sleep, startRedisCluster, whenReady } from '@headroom/testing'
import t from 'tap'
import { buildApp, clusterClient } from './helpers.js'

// Found by the topology test (examples/finance-api/topology): an ioredis
// Cluster drops its connections to nodes that serve no slot on a healthy
// cluster (the replicas given as startup nodes, once the slot map is known;
// replicas again on slot refreshes), each with a '-node' event. The store
// took every one for a lost connection, so under load an instance served
// sessions from its own memory and users behind the balancer got 401s.
t.test("a replica's connection closing on a healthy cluster does not take sessions offline; a master's does", async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3, replicas: 1 })
  const client = await whenReady(clusterClient(t, cluster.startupNodes))
  const app = await buildApp(t, { redis: client, keyPrefix: 'replicas:' })
  t.teardown(() => app.close())
  await app.ready()

  const replicaPorts = new Set((await cluster.roles()).filter((r) => r.role === 'slave').map((r) => r.node.port))
  const removed = new Promise((resolve) => client.once('-node', resolve))
  // a connection to a replica, as the pool holds it after a slot refresh
  const replica = client.nodes('all').find((n) => replicaPorts.has(n.options.port!))
  if (replica) {
    replica.disconnect()
  } else {
    // the pool holds none right now: make it drop one, as it does at start
    client.emit('-node', { options: { host: '127.0.0.1', port: [...replicaPorts][0] } })
  }
  await removed
  t.notOk(app.sessions.fallbackActive, 'sessions stay in Redis')

  const master = client.nodes('master')[0]!
  master.disconnect()
  await sleep(100)
  t.ok(app.sessions.fallbackActive, 'a master connection lost: memory takes over at once')
})
