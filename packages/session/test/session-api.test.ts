import { Signer } from '@fastify/cookie'
import t from 'tap'
import { sharedBackend } from './backends.js'
import { buildApp, cookieOf, idOf, login, me, SECRET, setCookie } from './helpers.js'

// request.session is this plugin's own object (not @fastify/session's): its public API, as apps use it

t.test('request.session keeps @fastify/session\'s API: get/set, save, touch, reload, regenerate(keys), destroy, sessionId, cookie options', async (t) => {
  const b = await sharedBackend(t)
  const app = await buildApp(t, { redis: b.client(), keyPrefix: b.prefix, maxAge: 60_000, hot: false })
  const seen: Record<string, unknown> = {}
  app.post('/api', async (request) => {
    const session = request.session
    seen.sessionId = session.sessionId
    seen.encrypted = session.encryptedSessionId
    session.set('note', 'via set')
    seen.get = session.get('note')
    seen.modified = session.isModified()
    await session.save()
    seen.saved = session.isSaved()
    seen.modifiedAfterSave = session.isModified()
    session.note = 'changed, then reloaded'
    await session.reload()
    seen.reloaded = request.session.note
    return { ok: true }
  })
  app.post('/regenerate-keep', async (request) => {
    const before = request.session.sessionId
    await request.session.regenerate(['userId'])
    return { before, after: request.session.sessionId, userId: request.session.userId ?? null, note: request.session.note ?? null }
  })
  app.post('/regenerate-cb', (request, reply) => {
    request.session.regenerate((err) => {
      request.session.note = 'after a callback regenerate'
      reply.send({ err: err?.message ?? null })
    })
  })
  app.post('/touch', async (request) => {
    const before = request.session.cookie.expires?.getTime() ?? 0
    await new Promise((resolve) => setTimeout(resolve, 20))
    request.session.touch()
    return { moved: (request.session.cookie.expires?.getTime() ?? 0) - before }
  })
  app.post('/destroy-cb', (request, reply) => {
    request.session.destroy((err) => reply.send({ err: err?.message ?? null, session: request.session }))
  })

  const cookie = await login(app, 'alice')
  const api = await app.inject({ method: 'POST', url: '/api', headers: { cookie } })
  t.equal(api.statusCode, 200)
  t.equal(seen.sessionId, idOf(cookie), 'sessionId is the unsigned id of the cookie')
  t.equal(seen.encrypted, decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1)), 'encryptedSessionId is the signed cookie value')
  t.equal(seen.get, 'via set', 'get() reads what set() wrote')
  t.equal(seen.modified, true, 'isModified() after a set')
  t.equal(seen.saved, true, 'isSaved() after save()')
  t.equal(seen.modifiedAfterSave, false, 'save() makes it unmodified')
  t.equal(seen.reloaded, 'via set', 'reload() reads the stored session back, dropping the unsaved change')
  t.equal((await me(app, cookie)).body.note, 'via set', 'save() persisted')

  const kept = (await app.inject({ method: 'POST', url: '/regenerate-keep', headers: { cookie } })).json()
  t.not(kept.after, kept.before, 'regenerate(keys) issues a new id')
  t.same([kept.userId, kept.note], ['alice', null], 'and keeps only the keys named')
  t.equal((await me(app, cookie)).body.userId, null, 'the old id is gone')

  const cb = await app.inject({ method: 'POST', url: '/regenerate-cb', headers: { cookie: await login(app, 'bob') } })
  t.same(cb.json(), { err: null }, 'regenerate(callback)')
  t.equal((await me(app, setCookie(cb) as string)).body.note, 'after a callback regenerate', 'the new session is request.session afterwards, and saved')

  const touched = (await app.inject({ method: 'POST', url: '/touch', headers: { cookie: await login(app, 'carol') } })).json()
  t.ok(touched.moved >= 15, `touch() moves the cookie's expiry (${touched.moved} ms)`)

  const carol = await login(app, 'carol')
  const destroyed = await app.inject({ method: 'POST', url: '/destroy-cb', headers: { cookie: carol } })
  t.same(destroyed.json(), { err: null, session: null }, 'destroy(callback): request.session is null')
  t.equal(cookieOf(destroyed)?.value, '', 'and the cookie is cleared')
  t.equal((await me(app, carol)).body.userId, null, 'the session is gone')
})

t.test('the cookie a login sets: configured attributes and expiry, the newest secret\'s signature', async (t) => {
  const b = await sharedBackend(t)
  const app = await buildApp(t, { redis: b.client(), keyPrefix: b.prefix, maxAge: 60_000, cookie: { path: '/', sameSite: 'strict', secure: false, domain: 'example.test' } })
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const cookie = cookieOf(res)
  t.equal(cookie?.sameSite, 'Strict')
  t.equal(cookie?.domain, 'example.test')
  t.equal(cookie?.path, '/')
  t.equal(cookie?.httpOnly, true)
  t.ok(Math.abs((cookie?.expires as Date).getTime() - (Date.now() + 60_000)) < 5000, 'expires with maxAge')
  const value = decodeURIComponent(cookie?.value ?? '')
  t.equal(new Signer(SECRET).unsign(value).valid, true, 'signed with the secret')

  // an unchanged read sends nothing; a read outside the cookie's path gets no session at all
  const read = await me(app, setCookie(res) as string)
  t.equal(read.body.userId, 'alice')
  t.equal(setCookie(read.res), null, 'an unchanged session is not re-sent')
})

t.test('a verified cookie is remembered, and only that exact string: a forgery of a remembered cookie is still refused', async (t) => {
  const b = await sharedBackend(t)
  const app = await buildApp(t, { redis: b.client(), keyPrefix: b.prefix })
  const good = await login(app, 'alice')
  for (let i = 0; i < 3; i++) t.equal((await me(app, good)).body.userId, 'alice', 'the genuine cookie, verified and then remembered')
  const value = decodeURIComponent(good.slice(good.indexOf('=') + 1))
  const id = value.slice(0, value.lastIndexOf('.'))
  const forgeries = [
    `${id}.${'A'.repeat(43)}`,
    `${id}.`,
    id,
    `${value}x`,
    value.slice(0, -1)
  ]
  for (const forged of forgeries) {
    const { res, body } = await me(app, `sessionId=${encodeURIComponent(forged)}`)
    t.equal(body.userId, null, `refused: ${forged.slice(-12)}`)
    t.ok(res.statusCode < 500)
  }
})
