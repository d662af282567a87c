import { isolatedSchema } from '@headroom/testing'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'

t.test('/health, /health/ready and /metrics are served; a drain fails readiness while liveness stays 200', async (t) => {
  const { url } = await isolatedSchema(t)
  await migrate(url)
  const app = await buildApp({ config: loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', DRAIN_DELAY_MS: '300' }), databaseUrl: url })
  t.teardown(() => app.close())
  await app.ready()
  await app.health.runChecks()

  const live = await app.inject('/health')
  t.equal(live.statusCode, 200)
  t.match(live.headers['content-type'], /application\/health\+json/)
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200, ready.body)
  const metrics = await app.inject('/metrics')
  t.equal(metrics.statusCode, 200)
  t.match(metrics.body, /# TYPE \w+/)
  t.equal((await app.inject({ url: '/metrics', remoteAddress: '203.0.113.9' })).statusCode, 403, 'a public address may not read /metrics')

  const drained = app.health.drain()
  t.equal((await app.inject('/health/ready')).statusCode, 503, 'not ready as soon as the drain starts')
  t.equal((await app.inject('/health')).statusCode, 200, 'still alive while draining')
  t.equal(await drained, 'clean')
})
