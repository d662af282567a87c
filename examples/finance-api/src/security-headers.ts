import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * The example's helmet options: CSP `script-src 'self'` (the dashboard has no
 * inline script), `connect-src 'self'`, and in production HSTS and
 * `upgrade-insecure-requests` (plain http is only for a laptop; there,
 * upgrading would break the page).
 */
export function securityHeaderOptions (production: boolean): HelmetOptions {
  return {
    contentSecurityPolicy: {
      directives: {
        'script-src': ["'self'"],
        'connect-src': ["'self'"],
        'upgrade-insecure-requests': production ? [] : null
      }
    },
    hsts: production
  }
}

/**
 * The headers helmet sets with these options, computed once by running its
 * middleware against a response that records them. Every value helmet
 * computes is a string fixed by the options, except a CSP directive given as
 * a function (a per-request nonce): refused here, since it would be frozen.
 * helmet's one removal, `X-Powered-By`, is dropped: Fastify never sets it.
 */
export function computeSecurityHeaders (options: HelmetOptions): Readonly<Record<string, string>> {
  const csp = options.contentSecurityPolicy
  const directives = typeof csp === 'object' ? csp.directives ?? {} : {}
  for (const [name, value] of Object.entries(directives)) {
    if (typeof value === 'function' || (Array.isArray(value) && value.some((v) => typeof v === 'function'))) {
      throw new TypeError(`security headers: CSP directive ${name} is computed per request; the headers are computed once at start`)
    }
  }
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader (name: string, value: string | number | readonly string[]) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { delete headers[name.toLowerCase()] }
  }
  let done = false
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err !== undefined && err !== null) throw err
    done = true
  })
  if (!done) throw new Error('security headers: helmet did not complete synchronously')
  return Object.freeze(headers)
}

/**
 * Security headers on every response (errors and 404s included), as
 * @fastify/helmet set them with the same options, but computed once at
 * start: @fastify/helmet ran two onRequest hooks and rebuilt helmet's
 * middleware (parsing and validating the CSP directives) on every request,
 * about 5 % of a busy instance's CPU. Every route gets the same set: the
 * example has no route-level helmet options.
 */
export function securityHeaders (app: FastifyInstance, options: HelmetOptions): void {
  const headers = computeSecurityHeaders(options)
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
}
