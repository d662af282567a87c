// Type tests: compiled by `pnpm typecheck` (tsconfig.types.json, strict,
// skipLibCheck: false) against the published declarations in dist/. A
// decorator whose type regresses, or an option of the wrong type that
// compiles, fails the build: an unused `@ts-expect-error` is an error.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import headroomSession, { type SessionManager, type UserSession } from '@headroom/session'

declare module '@headroom/session' {
  interface SessionData {
    cart?: string[]
  }
}

const app = Fastify()
await app.register(headroomSession, { secret: 'x'.repeat(32), cookie: { sameSite: 'strict', secure: 'auto' }, hot: false })

app.get('/', async (request) => {
  // @fastify/session's object, reached without importing @fastify/session
  expectTypeOf(request.session.regenerate()).toEqualTypeOf<Promise<void>>()
  expectTypeOf(request.session.destroy).toBeFunction()
  expectTypeOf(request.session.sessionId).toEqualTypeOf<string>()
  // our SessionData, and the user's own fields merged into it
  expectTypeOf(request.session.userId).toEqualTypeOf<string | undefined>()
  expectTypeOf(request.session.cart).toEqualTypeOf<string[] | undefined>()
  // @ts-expect-error not a field of SessionData
  expectTypeOf(request.session.nope).toBeAny()
  return null
})

expectTypeOf(app.sessions).toEqualTypeOf<SessionManager>()
expectTypeOf(app.sessions.list).returns.toEqualTypeOf<Promise<UserSession[]>>()
expectTypeOf(app.sessions.destroyUser).returns.toEqualTypeOf<Promise<number>>()

// @ts-expect-error secret is a string or an array of strings
await app.register(headroomSession, { secret: 42 })
// @ts-expect-error maxAge is in milliseconds, a number
await app.register(headroomSession, { maxAge: '1d' })
// @ts-expect-error sameSite is 'lax', 'strict' or 'none'
await app.register(headroomSession, { cookie: { sameSite: 'lenient' } })
// @ts-expect-error an unknown option is a compile error too
await app.register(headroomSession, { secrets: ['x'.repeat(32)] })
