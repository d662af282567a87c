import { isolatedSchema } from '@headroom/testing'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'

/**
 * The whole header set of an API response, a static asset and the dashboard
 * page, in development and in production, written out in full: the security
 * headers are computed once at start (security-headers.ts) and must stay
 * exactly what @fastify/helmet sent per request with the same options.
 */
const CSP = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline'"
const SECURITY = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0'
}
const BY_ENV = {
  development: { 'content-security-policy': `${CSP};connect-src 'self'` },
  production: {
    'content-security-policy': `${CSP};upgrade-insecure-requests;connect-src 'self'`,
    'strict-transport-security': 'max-age=31536000; includeSubDomains'
  }
}
/** what every response carries besides the security headers */
const COMMON = { 'x-request-id': /^req-[0-9a-f]{16}$/, date: /GMT$/, connection: 'keep-alive', 'content-length': /^\d+$/ }
const KINDS = {
  '/api/summary': {
    status: 401,
    headers: { ...COMMON, 'content-type': 'application/json; charset=utf-8', 'ratelimit-policy': '"default";q=500;w=900', ratelimit: /^"default";r=\d+;t=\d+$/ }
  },
  '/assets/app.css': {
    status: 200,
    headers: { ...COMMON, 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=31536000, immutable', etag: /^"[0-9a-f]{12}"$/ }
  },
  '/': {
    status: 200,
    headers: { ...COMMON, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'public, no-cache', etag: /^"[0-9a-f]{16}"$/ }
  }
}

for (const env of ['development', 'production'] as const) {
  t.test(`${env}: the full header set of an API response, a static asset and the dashboard page`, async (t) => {
    const { url } = await isolatedSchema(t)
    await migrate(url)
    const app = await buildApp({
      config: loadConfig({ NODE_ENV: env, DATABASE_URL: url, SESSION_SECRET: 'Zq8#kLm2$vN9pR4tW7yB1cF5hJ3gD6sXaE0uI', LOG_LEVEL: 'silent' }),
      databaseUrl: url
    })
    t.teardown(() => app.close())
    for (const [path, kind] of Object.entries(KINDS)) {
      // twice: the second response carries the same set (nothing is consumed by the first)
      for (const round of [1, 2]) {
        const res = await app.inject(path)
        t.equal(res.statusCode, kind.status, `${path} (${round})`)
        const expected: Record<string, string | RegExp> = { ...SECURITY, ...BY_ENV[env], ...kind.headers }
        t.same(Object.keys(res.headers).sort(), Object.keys(expected).sort(), `${path} (${round}): exactly these headers`)
        for (const [name, value] of Object.entries(expected)) {
          if (typeof value === 'string') t.equal(res.headers[name], value, `${path}: ${name}`)
          else t.match(res.headers[name], value, `${path}: ${name}`)
        }
      }
    }
  })
}
