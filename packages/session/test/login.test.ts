import t from 'tap'
import { sharedBackend } from './backends.js'
import { buildApp, cookieOf, idOf, redisClient, setCookie } from './helpers.js'
import { loginFlow } from './suite.js'
import { isolatedRedis, testApp } from '@headroom/testing'

t.test('login, then a request with the cookie sees the same session data; the id changes on login', async (t) => {
  await loginFlow(t, await sharedBackend(t))
})

t.test('secure defaults: HttpOnly, SameSite=Lax; Secure in production', async (t) => {
  const iso = await isolatedRedis(t)
  const redis = redisClient(t, iso.url)
  const dev = await buildApp(t, { redis, keyPrefix: iso.prefix })
  const res = await dev.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })
  const c = cookieOf(res)
  t.equal(c?.httpOnly, true)
  t.equal(String(c?.sameSite).toLowerCase(), 'lax')
  t.notOk(c?.secure, 'plain http outside production: not Secure (secure: auto)')
  t.ok(idOf(setCookie(res) as string).length >= 22, 'the id carries at least 128 random bits (22+ base64url characters)')

  const prod = await buildApp(t, { redis, keyPrefix: iso.prefix, production: true })
  const http = await prod.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })
  t.equal(setCookie(http), null, 'production never sends the cookie over plain http')

  const { headroomSession } = await import('../src/index.js')
  const behindProxy = testApp(t, { trustProxy: true })
  await behindProxy.register(headroomSession, { redis, keyPrefix: iso.prefix, production: true, secret: 'Vq3x9LkP0aZm7RtY2wBn5CdE8fGh1JsU4oQi6' })
  behindProxy.post('/login', async (request) => { request.session.userId = 'carol'; return {} })
  const secure = await behindProxy.inject({ method: 'POST', url: '/login', headers: { 'x-forwarded-proto': 'https' } })
  const sc = cookieOf(secure)
  t.equal(sc?.secure, true, 'Secure in production')
  t.equal(sc?.httpOnly, true)
  t.equal(String(sc?.sameSite).toLowerCase(), 'lax')
})
