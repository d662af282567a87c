import t from 'tap'
import { headroomSession, INSECURE_COOKIE_HINT } from '../src/index.js'
import { SECRET, setCookie, type TestContext } from './helpers.js'
import { LogLines, testApp } from '@headroom/testing'

const WARNING = 'a Secure session cookie was not sent because this request arrived over http; logged once per instance'

/** An app whose log lines are kept: a Secure cookie, Fastify trusting every proxy (the proxy's header decides https). */
async function secureApp (t: TestContext) {
  const { lines, stream } = new LogLines()
  const app = testApp(t, { trustProxy: true, logger: { level: 'warn', stream } })
  await app.register(headroomSession, { secret: SECRET, production: true })
  app.post('/login', async (request) => {
    await request.session.regenerate()
    request.session.userId = 'u1'
    return { ok: true }
  })
  app.get('/read', async (request) => ({ userId: request.session.userId ?? null }))
  await app.ready()
  return { app, warnings: () => lines.filter((l) => l.msg === WARNING) }
}

t.test('a Secure cookie that cannot be sent over http is logged once per instance, naming the fix, instead of failing silently', async (t) => {
  const { app, warnings } = await secureApp(t)
  // a proxy that terminates TLS but forgot X-Forwarded-Proto: the request looks like plain http
  const forgot = await app.inject({ method: 'POST', url: '/login' })
  t.equal(forgot.statusCode, 200)
  t.equal(setCookie(forgot), null, '@fastify/session sends no Secure cookie over http')
  t.equal(warnings().length, 1, 'and now it is said')
  t.equal(warnings()[0]?.hint, INSECURE_COOKIE_HINT)
  t.match(String(warnings()[0]?.hint), /X-Forwarded-Proto: https.*trustProxy/, 'the warning names the fix')
  t.equal(warnings()[0]?.level, 40, 'at warn level')
  t.notOk(JSON.stringify(warnings()).includes('sessionId='), 'no cookie or session id in the line')

  for (let i = 0; i < 5; i++) await app.inject({ method: 'POST', url: '/login' })
  t.equal(warnings().length, 1, 'once per instance, not once per request')

  const fixed = await app.inject({ method: 'POST', url: '/login', headers: { 'x-forwarded-proto': 'https' } })
  t.not(setCookie(fixed), null, 'with X-Forwarded-Proto from a trusted proxy the cookie is sent')
})

t.test('no warning when nothing was to be sent, or when the request is https', async (t) => {
  const { app, warnings } = await secureApp(t)
  await app.inject({ method: 'GET', url: '/read' })
  t.equal(warnings().length, 0, 'an untouched session sends no cookie on any protocol: nothing lost')
  await app.inject({ method: 'POST', url: '/login', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(warnings().length, 0, 'https: the cookie is sent')
})
