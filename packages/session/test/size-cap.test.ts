import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { errors } from '../src/index.js'
import { sharedBackend } from './backends.js'
import { buildApp, login, me, setCookie } from './helpers.js'

const BIG = 'x'.repeat(2000)

/** what an application's own error handler adds: the 413 must come from it, not from Fastify's fallback */
function withAppErrorHandler (app: FastifyInstance): void {
  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, request, reply) => {
    reply.code(err.statusCode ?? 500).send({ code: err.code, message: err.message, requestId: request.id })
  })
}

for (const backend of ['redis', 'memory'] as const) {
  t.test(`${backend}: a session over maxSize is a 413 with its code, and the stored session is kept`, async (t) => {
    const b = backend === 'redis' ? await sharedBackend(t) : null
    const app = await buildApp(t, b ? { redis: b.client(), keyPrefix: b.prefix, maxSize: 1024 } : { maxSize: 1024 })
    // routes take the error handler set before them: these two are the app's
    withAppErrorHandler(app)
    app.post<{ Body: { note: string } }>('/put', async (request) => {
      request.session.note = request.body.note
      return { ok: true }
    })
    app.post('/save-now', async (request) => {
      request.session.note = BIG
      // an explicit save in the handler: the handler fails, and the error response's save must not fail again
      await request.session.save()
      return { ok: true }
    })

    const cookie = await login(app, 'big')
    for (const url of ['/put', '/save-now']) {
      const res = await app.inject({ method: 'POST', url, payload: { note: BIG }, headers: { cookie } })
      t.equal(res.statusCode, 413, `${url}: 413, not a 200 with an unsaved session, nor a 500`)
      const body = res.json()
      t.equal(body.code, 'HEADROOM_SESSION_TOO_LARGE', `${url}: the code`)
      t.match(body.message, /over maxSize \(1024 bytes\): nothing was saved/, `${url}: a message saying what happened`)
      t.ok(body.requestId, `${url}: answered by the app's error handler (the session save did not fail a second time)`)
      t.equal(setCookie(res), null, `${url}: no cookie set or cleared`)
      t.same((await me(app, cookie)).body, { userId: 'big', a: null, b: null, note: null }, `${url}: the stored session is unchanged and still logged in`)
    }

    // a new (anonymous) session that is too large from its first save: 413, nothing stored, no cookie
    const fresh = await app.inject({ method: 'POST', url: '/put', payload: { note: BIG } })
    t.equal(fresh.statusCode, 413)
    t.equal(setCookie(fresh), null)

    // under the cap, the same route still saves
    const ok = await app.inject({ method: 'POST', url: '/put', payload: { note: 'small' }, headers: { cookie } })
    t.equal(ok.statusCode, 200)
    t.equal((await me(app, cookie)).body.note, 'small')
  })
}

t.test('with Fastify\'s default error handler: 413 and the code, nothing else of the session', async (t) => {
  const app = await buildApp(t, { maxSize: 1024 })
  const cookie = await login(app, 'big')
  const res = await app.inject({ method: 'POST', url: '/set', payload: { note: BIG }, headers: { cookie } })
  t.equal(res.statusCode, 413)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.equal(res.json().code, 'HEADROOM_SESSION_TOO_LARGE')
  t.notMatch(res.body, /xxxx/, 'the body does not echo the session')
  t.ok(new errors.TooLarge(2000, 1024) instanceof Error)
  t.equal(new errors.TooLarge(2000, 1024).statusCode, 413)
})
