import Fastify from 'fastify'
import { payload } from './payload.js'

/** The baseline: a bare route returning the payload every time. */
export default async function build () {
  const app = Fastify({ logger: false })
  app.get('/portfolio/summary', async () => payload)
  return app
}
