import Fastify from 'fastify'

/** Bare Fastify: the floor. */
export default async function build () {
  const app = Fastify({ logger: false })
  app.get('/', async () => ({ hello: 'world' }))
  return app
}
