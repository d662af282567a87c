import { defineScenario } from '@headroom/benchmarks'
import { authenticatedRead } from './servers/shared.js'

/**
 * The secondary line: one logged-in user, every request carrying the same
 * cookie (session-users is the headline, with 1,000). An authenticated read
 * (GET /me of an unchanged session): headroom costs one HGETALL;
 * @fastify/session + connect-redis, with @fastify/session's default
 * `rolling: true`, a GET and a full SET per request. Bare Fastify without
 * sessions is the ceiling.
 */
export default defineScenario({
  kind: 'http',
  name: 'session-read',
  description: 'One cookie: authenticated reads of a single unchanged session: @headroom/session vs @fastify/session + connect-redis vs bare Fastify (no session)',
  baseline: 'connect-redis',
  variants: [
    { name: 'bare', server: new URL('./servers/bare.ts', import.meta.url), requests: () => [{ path: '/me' }] },
    { name: 'connect-redis', server: new URL('./servers/connect-redis.ts', import.meta.url), requests: authenticatedRead },
    { name: 'headroom', server: new URL('./servers/headroom.ts', import.meta.url), requests: authenticatedRead }
  ],
  checks: [{ variant: 'headroom', against: 'connect-redis', min: 1.5 }]
})
