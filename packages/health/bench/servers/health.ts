import Fastify from 'fastify'
import { headroomHealth } from '../../src/index.js'

/**
 * The same route with @headroom/health at its defaults: load shedding
 * thresholds, the duration histogram and in-flight gauge on every request,
 * process metrics, readiness running in the background. Signals are left to
 * the harness.
 */
export default async function build () {
  const app = Fastify({ logger: false })
  await app.register(headroomHealth, { handleSignals: false })
  app.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  return app
}
