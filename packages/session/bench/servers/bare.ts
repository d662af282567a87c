import Fastify from 'fastify'

/** the ceiling: the same read route with no session at all */
export default async function build () {
  const app = Fastify({ logger: false })
  app.get('/me', async () => ({ userId: 'user-1' }))
  return app
}
