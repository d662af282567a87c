import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TestContext } from './teardown.js'

/**
 * A Fastify app closed at teardown. `forceCloseConnections` is on by default:
 * an app that listened and still holds a keep-alive connection would
 * otherwise wait for it in `close()`, and tap would hang.
 */
export function testApp (t: TestContext, options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify({ forceCloseConnections: true, ...options })
  t.teardown(() => app.close())
  return app
}
