import { clusterClient as testingClusterClient, redisClient as testingRedisClient, sleep, testApp, type TestContext } from '@headroom/testing'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { headroomSession, type SessionOptions } from '../src/index.js'

declare module '../src/index.js' {
  interface SessionData {
    a?: number
    b?: number
    note?: string
  }
}

export type { TestContext }

/** A Redis client (one retry, offline queue on: ioredis's defaults otherwise), closed at teardown. */
export function redisClient (t: TestContext, target: string | number): Redis {
  return testingRedisClient(t, target, { maxRetriesPerRequest: 1 })
}

export function clusterClient (t: TestContext, startupNodes: Array<{ host: string, port: number }>): Cluster {
  return testingClusterClient(t, startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } })
}

export const SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz'

/** An app with the plugin and the routes every test uses. */
export async function buildApp (t: TestContext, options: SessionOptions): Promise<FastifyInstance> {
  const app = testApp(t, { logger: false })
  await app.register(headroomSession, { secret: SECRET, ...options })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    // a privilege change: a new id, the old one deleted
    await request.session.regenerate()
    request.session.userId = request.body.user
    return { ok: true }
  })
  app.get('/me', async (request) => ({
    userId: request.session.userId ?? null,
    a: request.session.a ?? null,
    b: request.session.b ?? null,
    note: request.session.note ?? null
  }))
  app.post<{ Body: { a?: number, b?: number, note?: string, delayMs?: number } }>('/set', async (request) => {
    const { delayMs, ...fields } = request.body
    if (delayMs) await sleep(delayMs)
    Object.assign(request.session, fields)
    return { ok: true }
  })
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  app.post('/logout-everywhere', async (request) => {
    const userId = request.session.userId
    if (!userId) return { destroyed: 0 }
    return { destroyed: await app.sessions.destroyUser(userId) }
  })
  app.get<{ Params: { user: string } }>('/sessions/:user', async (request) => {
    const list = await app.sessions.list(request.params.user)
    return list.map((s) => ({ id: s.id, userId: s.data.userId ?? null }))
  })
  return app
}

/** `name=value` of the session cookie a response sets, or null if it sets none (a clearing cookie counts as set, value ''). */
export function setCookie (res: LightMyRequestResponse, name = 'sessionId'): string | null {
  const cookie = cookieOf(res, name)
  return cookie ? `${name}=${cookie.value}` : null
}

/** the last Set-Cookie of that name: the one a browser keeps */
export function cookieOf (res: LightMyRequestResponse, name = 'sessionId') {
  return res.cookies.filter((c) => c.name === name).at(-1)
}

/** Logs `user` in on a fresh session; returns the cookie header. */
export async function login (app: FastifyInstance, user: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  const cookie = setCookie(res)
  if (!cookie) throw new Error('login set no cookie')
  return cookie
}

export async function me (app: FastifyInstance, cookie?: string) {
  const res = await app.inject({ method: 'GET', url: '/me', headers: cookie ? { cookie } : {} })
  return { res, body: res.json() as { userId: string | null, a: number | null, b: number | null, note: string | null } }
}

/** the unsigned id in a `sessionId=<id>.<signature>` cookie */
export function idOf (cookie: string): string {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1))
  return value.slice(0, value.lastIndexOf('.'))
}
