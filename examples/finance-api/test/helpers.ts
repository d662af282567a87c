import { isolatedRedis, startPostgres, startReplica, type TestContext } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'

export interface Reply<T = any> { status: number, body: T, headers: Record<string, string | string[] | undefined> }

/**
 * A logged-in browser in a few lines: keeps the session cookie like a
 * cookie jar and sends the CSRF token from the last login on writes. Works
 * over `app.inject()` or, given a base URL, over real HTTP.
 */
export class Client {
  cookie: string | undefined
  csrfToken: string | undefined
  constructor (private readonly target: FastifyInstance | string) {}

  async request<T = any> (method: string, path: string, body?: unknown): Promise<Reply<T>> {
    const headers: Record<string, string> = {}
    if (this.cookie) headers.cookie = this.cookie
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (method !== 'GET' && this.csrfToken) headers['x-csrf-token'] = this.csrfToken
    const payload = body === undefined ? undefined : JSON.stringify(body)
    let status: number
    let text: string
    let replyHeaders: Record<string, string | string[] | undefined>
    if (typeof this.target === 'string') {
      const res = await fetch(this.target + path, { method, headers, body: payload })
      status = res.status
      text = await res.text()
      replyHeaders = Object.fromEntries(res.headers.entries())
      const set = res.headers.getSetCookie()
      if (set.length > 0) replyHeaders['set-cookie'] = set
    } else {
      const res = await this.target.inject({ method: method as 'GET', url: path, headers, payload })
      status = res.statusCode
      text = res.body
      replyHeaders = res.headers as Record<string, string | string[] | undefined>
    }
    const setCookie = replyHeaders['set-cookie']
    for (const c of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair] = c.split(';')
      if (!pair) continue
      // an expired cookie is the server clearing it
      this.cookie = /expires=Thu, 01 Jan 1970/i.test(c) || /max-age=0/i.test(c) ? undefined : pair
    }
    const body2 = text && String(replyHeaders['content-type'] ?? '').includes('json') ? JSON.parse(text) : text
    if ((path === '/api/auth/login' || path === '/api/auth/signup') && status < 300) this.csrfToken = body2.csrfToken
    return { status, body: body2 as T, headers: replyHeaders }
  }

  get<T = any> (path: string) { return this.request<T>('GET', path) }
  post<T = any> (path: string, body?: unknown) { return this.request<T>('POST', path, body) }

  signup (email: string, password: string, name = 'Test User') {
    return this.post('/api/auth/signup', { email, password, name })
  }

  login (email: string, password: string) {
    return this.post('/api/auth/login', { email, password })
  }
}

/** A private primary, its streaming replica (caught up) and the app on both, closed at teardown. */
export async function replicatedApp (t: TestContext) {
  const primary = await startPostgres(t)
  const replica = await startReplica(t, primary)
  const redis = await isolatedRedis(t)
  await migrate(primary.url)
  await replica.caughtUp()
  const app = await buildApp({
    config: loadConfig({
      DATABASE_URL: primary.url, DATABASE_REPLICA_URLS: replica.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, LOG_LEVEL: 'silent'
    }),
    databaseUrl: primary.url
  })
  t.teardown(() => app.close())
  await app.ready()
  return { app, replica }
}
