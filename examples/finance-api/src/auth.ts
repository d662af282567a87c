import { randomBytes, timingSafeEqual } from 'node:crypto'
// request.session's type: @headroom/session's published types do not carry @fastify/session's augmentation
import type {} from '@fastify/session'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { CsrfRejected, Unauthenticated } from './errors.js'

declare module '@headroom/session' {
  interface SessionData {
    /** the synchronizer token a cookie-authenticated write must echo in `x-csrf-token` */
    csrfToken?: string
  }
}

export function newCsrfToken (): string {
  return randomBytes(32).toString('base64url')
}

/** The logged-in user's id, or a 401. */
export function userOf (request: FastifyRequest): string {
  const id = request.session.userId
  if (!id) throw new Unauthenticated()
  return id
}

function sameToken (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * preHandler for writes authenticated by the session cookie. SameSite=Lax
 * already keeps the cookie off cross-site POSTs in current browsers; the
 * synchronizer token covers older ones and same-site attackers (a sibling
 * subdomain). A cross-site page cannot read the token nor set the header
 * without a CORS preflight this API never grants.
 */
export async function requireCsrf (request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  userOf(request)
  const expected = request.session.csrfToken
  const sent = request.headers['x-csrf-token']
  if (!expected || typeof sent !== 'string' || !sameToken(sent, expected)) throw new CsrfRejected()
}
