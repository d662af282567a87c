import Fastify from 'fastify'

/** Bare Fastify with the same trivial route: the baseline. */
export default async function build () {
  const app = Fastify({ logger: false })
  app.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  return app
}
