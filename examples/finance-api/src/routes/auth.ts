import { DEFAULT_SESSION_KEY } from '@headroom/pool'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { newCsrfToken, requireCsrf, userOf } from '../auth.js'
import type { Deps } from '../deps.js'
import { BadCredentials, EmailTaken, Unauthenticated } from '../errors.js'
import { dummyHash, hashPassword, verifyPassword } from '../passwords.js'
import type { LoginGuard } from '../login-guard.js'
import { createUser, EmailTakenError, findCredentials, findUser, type User } from '../repo.js'
import { secret, text } from '../schemas.js'

// trimmed; control characters and lone surrogates refused (schemas.ts), at login too
const email = { ...text(3, 254), format: 'email' } as const
const loginEmail = text(1, 254)
const password = secret(8, 200)
const name = text(1, 100)

const userSchema = {
  type: 'object',
  properties: { id: { type: 'string' }, email: { type: 'string' }, name: { type: 'string' }, createdAt: { type: 'string' } }
} as const
const sessionReply = {
  type: 'object',
  properties: { user: userSchema, csrfToken: { type: 'string' } }
} as const

/** Routes that take credentials get the strict login policy (few attempts per minute per client). */
export interface AuthRouteOptions {
  deps: Deps
  /** route config for signup and login (the rate-limit policy) */
  credentialRouteConfig?: Record<string, unknown>
  /** failure counters and the hashing bound (login-guard.ts) */
  guard: LoginGuard
}

export const authRoutes: FastifyPluginAsync<AuthRouteOptions> = async (app, { deps, guard, credentialRouteConfig = {} }) => {
  const { db: dbFor, sessions } = deps

  /**
   * A new session id on every login: an id planted before login (fixation)
   * is worthless after. The new session keeps @headroom/pool's write position
   * (signup has just written the user), so the next read cannot go to a
   * replica that has not replayed it.
   */
  async function startSession (request: FastifyRequest, user: User) {
    await request.session.regenerate([DEFAULT_SESSION_KEY])
    const csrfToken = newCsrfToken()
    request.session.userId = user.id
    request.session.csrfToken = csrfToken
    return { user, csrfToken }
  }

  app.post<{ Body: { email: string, password: string, name: string } }>('/api/auth/signup', {
    config: credentialRouteConfig,
    schema: {
      body: {
        type: 'object',
        required: ['email', 'password', 'name'],
        additionalProperties: false,
        properties: { email, password, name }
      },
      response: { 201: sessionReply }
    }
  }, async (request, reply) => {
    const { email, password, name } = request.body
    // per address (/64) and inside the per-instance hashing bound
    const passwordHash = await guard.signup(request, reply, () => hashPassword(password))
    let user: User
    try {
      user = await createUser(dbFor(request), { email, name: name.trim(), passwordHash })
    } catch (err) {
      if (err instanceof EmailTakenError) throw new EmailTaken()
      throw err
    }
    reply.code(201)
    return startSession(request, user)
  })

  app.post<{ Body: { email: string, password: string } }>('/api/auth/login', {
    config: credentialRouteConfig,
    schema: {
      body: {
        type: 'object',
        required: ['email', 'password'],
        additionalProperties: false,
        properties: { email: loginEmail, password: secret(0, 200) }
      },
      response: { 200: sessionReply }
    }
  }, async (request, reply) => {
    const { email, password } = request.body
    // failure counters first (a refused attempt costs no hash), then the hash inside the bound
    const { result: found, attempt } = await guard.login(request, reply, email, async () => {
      const found = await findCredentials(dbFor(request), email)
      // same work whether or not the email exists: no user enumeration by timing
      const ok = await verifyPassword(password, found?.passwordHash ?? await dummyHash())
      return ok ? found : undefined
    })
    if (!found) {
      await attempt.failed()
      throw new BadCredentials()
    }
    await attempt.succeeded()
    const { passwordHash: _, ...user } = found
    return startSession(request, user)
  })

  app.get('/api/auth/me', { schema: { response: { 200: sessionReply } } }, async (request) => {
    const user = await findUser(dbFor(request), userOf(request))
    if (!user) {
      // the user was deleted while the session lived
      await request.session.destroy()
      throw new Unauthenticated()
    }
    request.session.csrfToken ??= newCsrfToken()
    return { user, csrfToken: request.session.csrfToken }
  })

  app.post('/api/auth/logout', { preHandler: requireCsrf }, async (request, reply) => {
    await request.session.destroy()
    reply.code(204)
  })

  app.post('/api/auth/logout-everywhere', {
    preHandler: requireCsrf,
    schema: { response: { 200: { type: 'object', properties: { sessionsEnded: { type: 'integer' } } } } }
  }, async (request) => {
    const userId = userOf(request)
    const sessionsEnded = await sessions.logoutEverywhere(request, userId)
    return { sessionsEnded }
  })
}
