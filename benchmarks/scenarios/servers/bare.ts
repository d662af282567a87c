import Fastify from 'fastify'

/** Bare Fastify answering a small JSON payload: the floor every scenario is measured against. */
export default async function build () {
  const app = Fastify({ logger: false })
  app.get('/', async () => ({ hello: 'world' }))
  return app
}
