import t from 'tap'
import { getHub } from '@headroom/core'
import { freePort, isolatedSchema } from '@headroom/testing'
import { build } from './helpers.js'

// The shared server stands in for two replicas here (it is not in recovery, so
// always fresh): this file is about routing; replicas.test.ts uses a real standby.
t.test('reads spread over the healthy replicas; one that is down is ejected and skipped', async (t) => {
  const { url } = await isolatedSchema(t)
  const deadPort = await freePort()
  const { app } = await build(t, {
    primary: url,
    replicas: [
      { connectionString: url, application_name: 'replica-a' },
      `postgres://postgres@127.0.0.1:${deadPort}/test`,
      { connectionString: url, application_name: 'replica-b' }
    ],
    min: 1,
    replicaCheckIntervalMs: 100
  })
  t.same(app.db.replicaStatus().map((r) => r.up), [true, false, true])
  const seen: string[] = []
  for (let i = 0; i < 10; i++) {
    seen.push((await app.db.read<{ name: string }>("SELECT current_setting('application_name') AS name")).rows[0]!.name)
  }
  t.same(seen, ['replica-a', 'replica-b', 'replica-a', 'replica-b', 'replica-a', 'replica-b', 'replica-a', 'replica-b', 'replica-a', 'replica-b'], 'round robin over the two healthy ones')
  const checks = getHub(app).checks()
  t.same(checks.map((c) => [c.name, c.critical]), [['postgres:primary', true], ['postgres:replica:0', false], ['postgres:replica:1', false], ['postgres:replica:2', false]])
  const down = await checks[2]!.check()
  t.equal(down.status, 'warn')
  t.match(down.output, /ECONNREFUSED/)
  t.equal((await checks[1]!.check()).status, 'pass')
})

t.test('with every replica down, reads go to the primary without an error', async (t) => {
  const { url } = await isolatedSchema(t)
  const { app } = await build(t, { primary: url, replicas: [`postgres://postgres@127.0.0.1:${await freePort()}/test`], min: 1 })
  const { rows } = await app.db.read<{ name: string }>("SELECT current_setting('application_name') AS name")
  t.equal(rows[0]!.name, 'headroom-pool', 'served by the primary pool')
  t.match(await getHub(app).registry.metrics(), /headroom_pool_reads_total\{target="primary",reason="no_replica"\} 1/)
})
