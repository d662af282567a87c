import t from 'tap'
import { clusterBackend } from './backends.js'
import { concurrentFields, forged, loginFlow, logoutEverywhere, outage, readCost } from './suite.js'

// the whole suite against one private 3-master Redis Cluster; every key prefix is per test
t.test('the same suite against a real 3-node Redis Cluster', async (t) => {
  const cluster = await clusterBackend(t)
  const scoped = (prefix: string) => ({ ...cluster, prefix })
  await t.test('login', (t) => loginFlow(t, scoped('login:')))
  await t.test('read cost', (t) => readCost(t, scoped('read:')))
  await t.test('forged cookies', (t) => forged(t, scoped('forged:')))
  await t.test('log out everywhere', (t) => logoutEverywhere(t, scoped('users:')))
  await t.test('concurrent fields', (t) => concurrentFields(t, scoped('conc:')))
  // a 1 s timeout with 800 ms of slack: still below a second timeout, and robust to a Cluster's
  // nodes (three processes beside this one on 2 loaded cores) being descheduled for a few hundred ms
  await t.test('outage of every node', (t) => outage(t, scoped('outage:'), { commandTimeoutMs: 1000, slackMs: 800 }))
})
