import t from 'tap'
import { Redis } from 'ioredis'
import { startRedisCluster } from '@headroom/testing'

t.test('a cluster with replicas promotes the replica of a killed master, and keeps what was replicated', async (t) => {
  const cluster = await startRedisCluster(t, { replicas: 1 })
  const roles = await cluster.roles()
  t.equal(roles.filter((r) => r.role === 'master').length, 3, 'three masters')
  t.equal(roles.filter((r) => r.role === 'slave').length, 3, 'three replicas')

  const client = cluster.client()
  await client.set('fixture-key', 'v')
  const slot = await client.cluster('KEYSLOT', 'fixture-key') as number
  const owner = (await client.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to)
  const masterPort = Number(owner?.[2]?.[1])
  const master = roles.find((r) => r.node.port === masterPort)
  const replica = roles.find((r) => r.masterPort === masterPort)
  t.ok(master && replica, 'the key has a master and that master a replica')
  // WAIT: the write has reached the replica before the master dies
  const direct = new Redis(masterPort, '127.0.0.1')
  t.equal(await direct.wait(1, 5000), 1, 'one replica acknowledged')
  direct.disconnect()

  await master!.node.kill()
  await cluster.healthy()
  const after = await cluster.roles()
  t.equal(after.filter((r) => r.role === 'master').length, 3, 'three masters again')
  t.equal(after.find((r) => r.node === replica!.node)?.role, 'master', "the killed master's replica was promoted")
  t.equal(await client.get('fixture-key'), 'v', 'the replicated write survived the failover')
})
