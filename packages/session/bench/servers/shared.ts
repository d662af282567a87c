import type { FastifyInstance } from 'fastify'

/** a random-looking secret of benchmark's own: the servers run with NODE_ENV=production */
export const SECRET = 'bench-Vq3x9LkP0aZm7RtY2wBn5CdE8fGh1JsU4oQi6'

/** the same two routes on every session stack: log in once, then authenticated reads */
export function routes (app: FastifyInstance): void {
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.userId = (request.query as { user?: string }).user ?? 'user-1'
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

/** logs `user` in against a running variant; returns its session cookie (`sessionId=…`) */
async function login (url: string, user: string): Promise<string> {
  const res = await fetch(`${url}/login?user=${encodeURIComponent(user)}`, { method: 'POST' })
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c?.startsWith('sessionId='))
  if (!cookie) throw new Error(`login at ${url} set no session cookie (${res.status})`)
  return cookie
}

/** logs in once and returns the authenticated read it is measured on: every request carries the same cookie */
export async function authenticatedRead ({ url }: { url: string }) {
  return [{ path: '/me', headers: { cookie: await login(url, 'user-1') } }]
}

/** logged-in users of the many-users scenarios */
export const USERS = 1000

/**
 * Logs in USERS distinct users (10 logins at a time) and returns one
 * authenticated read per session. Each autocannon connection cycles through
 * this list from its start, so every session is read in turn; concurrent
 * requests carry the same or neighbouring sessions (no variant shares work
 * between requests of one session, so that costs nobody anything).
 */
export async function manyUsersRead ({ url }: { url: string }) {
  const cookies: string[] = new Array(USERS)
  let next = 0
  await Promise.all(Array.from({ length: 10 }, async () => {
    while (next < USERS) {
      const i = next++
      cookies[i] = await login(url, `user-${i}`)
    }
  }))
  return cookies.map((cookie) => ({ path: '/me', headers: { cookie } }))
}
