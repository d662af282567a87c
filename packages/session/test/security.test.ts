import t from 'tap'
import Fastify from 'fastify'
import { errors, headroomSession, MIN_SECRET_LENGTH } from '../src/index.js'
import { buildApp, login, me } from './helpers.js'

async function boot (options: Parameters<typeof headroomSession>[1]) {
  const app = Fastify()
  await app.register(headroomSession, options)
  await app.ready()
  await app.close()
}

t.test('production refuses a missing, short, placeholder or repetitive secret, naming the problem', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['no secret is configured', undefined],
    [`under ${MIN_SECRET_LENGTH}`, 'short-secret'],
    ['placeholder', 'a secret with minimum length of 32 characters'],
    ['placeholder', 'keyboard cat keyboard cat keyboard cat!!'],
    ['distinct characters', 'a'.repeat(64)],
    [`under ${MIN_SECRET_LENGTH}`, ['Vq3x9LkP0aZm7RtY2wBn5CdE8fGh1JsU4oQi6', 'old-and-short']]
  ]
  for (const [why, secret] of cases) {
    const err = await boot({ production: true, secret: secret as string }).then(() => null, (e: Error) => e)
    t.ok(err instanceof errors.WeakSecret, `refused: ${why}`)
    t.equal((err as { code?: string } | null)?.code, 'HEADROOM_SESSION_WEAK_SECRET')
    t.match(err?.message, why)
  }
  await t.resolves(boot({ production: true, secret: ['Vq3x9LkP0aZm7RtY2wBn5CdE8fGh1JsU4oQi6', 'Zr8u2Nw5Qe1Ty7Ui3Op9As4Df6Gh0Jk2Lx5Cv'] }), 'two strong secrets start')
  await t.resolves(boot({}), 'outside production a missing secret is replaced by a random one (with a warning)')
})

t.test('bad options fail at register with a message naming the option', async (t) => {
  const cases: Array<[string, Parameters<typeof headroomSession>[1]]> = [
    ['maxAge', { maxAge: -1 }],
    ['touchAfter', { maxAge: 1000, touchAfter: 1000 }],
    ['cookie.sameSite', { cookie: { sameSite: 'loose' as never } }],
    ['cookie.sameSite', { cookie: { sameSite: 'none', secure: false } }],
    ['cookie.httpOnly', { production: true, secret: 'Vq3x9LkP0aZm7RtY2wBn5CdE8fGh1JsU4oQi6', cookie: { httpOnly: false } }],
    ['secret', { secret: [] }],
    ['maxSize', { maxSize: 0 }],
    ['cookieName', { cookieName: 'bad name' }]
  ]
  for (const [option, opts] of cases) {
    const err = await boot(opts).then(() => null, (e: Error) => e)
    t.ok(err instanceof errors.InvalidOption, `${option}: refused`)
    t.match(err?.message, `"${option}"`, `${option}: the message names it`)
  }
})

t.test('without Redis the sessions live in memory, and the per-user index works there too', async (t) => {
  const app = await buildApp(t, {})
  const c1 = await login(app, 'solo')
  await login(app, 'solo')
  t.equal((await me(app, c1)).body.userId, 'solo')
  t.equal(app.sessions.fallbackActive, true)
  t.equal((await app.sessions.list('solo')).length, 2)
  t.equal(await app.sessions.destroyUser('solo'), 2)
  t.equal((await me(app, c1)).body.userId, null)
})
