import t from 'tap'
import { Redis } from 'ioredis'
import { startRedis, startRedisCluster } from '../src/index.js'

t.test('a private redis-server is killed and restarted on the same port', async (t) => {
  const server = await startRedis(t)
  t.not(server.port, 6379, 'never the shared server')
  const client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 50 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  t.equal(await client.ping(), 'PONG')

  await server.kill()
  t.equal(server.pid(), null)
  await t.rejects(client.ping(), 'commands fail while it is down')

  await server.start()
  // the client's own reconnect finds it again
  let pong = ''
  for (let i = 0; i < 100 && pong !== 'PONG'; i++) {
    pong = await client.ping().catch(() => '')
    if (pong !== 'PONG') await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(pong, 'PONG', 'answers again after the restart')
})

t.test('a 3-master Redis Cluster reports cluster_state:ok and serves keys across slots', async (t) => {
  const cluster = await startRedisCluster(t)
  t.equal(cluster.nodes.length, 3)
  const direct = new Redis(cluster.nodes[0]!.port, '127.0.0.1')
  t.teardown(() => direct.disconnect())
  const info = String(await direct.cluster('INFO'))
  t.match(info, /cluster_state:ok/)
  t.match(info, /cluster_known_nodes:3/)
  t.match(info, /cluster_slots_assigned:16384/)

  const client = cluster.client()
  const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)
  for (const key of keys) await client.set(key, key)
  for (const key of keys) t.equal(await client.get(key), key)
})
