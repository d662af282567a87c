import type { FastifyInstance } from 'fastify'

/** a random-looking secret of benchmark's own: the servers run with NODE_ENV=production */
export const SECRET = 'bench-Vq3x9LkP0aZm7RtY2wBn5CdE8fGh1JsU4oQi6'

/** the same two routes on every session stack: log in once, then authenticated reads */
export function routes (app: FastifyInstance): void {
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.userId = 'user-1'
    return { ok: true }
  })
  // read by session-read-cpu.bench.ts before and after a batch of requests
  app.get('/__cpu', async () => process.cpuUsage())
  app.get('/me', async (request, reply) => {
    const userId = request.session.userId
    if (!userId) return reply.code(401).send({ error: 'not logged in' })
    return { userId }
  })
}

/** logs in against a running variant and returns the authenticated read it is measured on */
export async function authenticatedRead ({ url }: { url: string }) {
  const res = await fetch(`${url}/login`, { method: 'POST' })
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c?.startsWith('sessionId='))
  if (!cookie) throw new Error(`login at ${url} set no session cookie (${res.status})`)
  return [{ path: '/me', headers: { cookie } }]
}
