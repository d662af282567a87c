/**
 * The compose stack's redis/cluster-init.sh, run for real on six private
 * cluster-enabled redis-servers (never the shared 6379): three masters with
 * a replica each, every slot served, and a second run leaves the cluster be.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { freePort, startRedis } from '@headroom/testing'
import { Redis } from 'ioredis'
import t from 'tap'
import { DEPLOY_DIR } from './deploy-files.js'

function sh (script: string, env: NodeJS.ProcessEnv): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', [script], { env, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })
    })
  })
}

t.test('cluster-init.sh makes 3 masters + 3 replicas out of six empty nodes, and leaves an existing cluster be', async (t) => {
  const nodes = []
  for (let i = 0; i < 6; i++) {
    // the cluster bus on a port of its own (not port + 10000, which may be taken)
    nodes.push(await startRedis(t, { args: ['--cluster-enabled', 'yes', '--cluster-port', String(await freePort()), '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '5000'] }))
  }
  const env = { PATH: process.env.PATH, REDIS_CLUSTER_NODES: nodes.map((n) => `127.0.0.1:${n.port}`).join(' ') }
  const script = join(DEPLOY_DIR, 'redis/cluster-init.sh')

  const first = await sh(script, env)
  t.equal(first.code, 0, 'cluster-init.sh succeeds')
  if (first.code !== 0) t.comment(first.stdout + first.stderr)
  t.match(first.stdout, /cluster ready/)

  const client = new Redis(nodes[0]!.url)
  t.teardown(() => client.disconnect())
  const info = await client.call('CLUSTER', 'INFO') as string
  t.match(info, /cluster_state:ok/)
  t.match(info, /cluster_slots_assigned:16384/)
  const lines = (await client.call('CLUSTER', 'NODES') as string).trim().split('\n')
  const flags = lines.map((l) => l.split(' ')[2]!.split(','))
  t.equal(flags.filter((f) => f.includes('master')).length, 3, 'three masters')
  t.equal(flags.filter((f) => f.includes('slave')).length, 3, 'three replicas, attached when the script says ready')
  t.equal(lines.filter((l) => l.split(' ')[2]!.includes('master') && l.split(' ').length > 8).length, 3, 'each master owns slots')

  const again = await sh(script, env)
  t.equal(again.code, 0)
  t.match(again.stdout, /the cluster exists already/, 'a restart of the stack does not recreate the cluster')
})
