import { defineScenario } from '@headroom/benchmarks'
import { startRedis } from '@headroom/testing'
import { manyUsersRead } from './servers/shared.js'

/**
 * The headline session scenario, shaped like traffic: 1,000 users log in to
 * each server before it is measured, and the load is their authenticated
 * reads (GET /me of an unchanged session), each request carrying one of the
 * 1,000 cookies in turn. Two anchors: @fastify/session + connect-redis as
 * shipped (`rolling: true`: a GET, a full SET and a Set-Cookie per request)
 * and tuned as its documentation recommends (`rolling: false`,
 * `saveUninitialized: false`: one GET). The tuned stack is the baseline: it
 * is what a team that read the docs runs. Every stack uses one private Redis
 * of the scenario's own, so no other benchmark's or test's keys share it.
 */
export default defineScenario({
  kind: 'http',
  name: 'session-users',
  description: 'Authenticated reads of 1,000 logged-in users (one cookie each, in turn): @headroom/session vs @fastify/session + connect-redis tuned (rolling: false, saveUninitialized: false) and as shipped (rolling: true), bare Fastify as the ceiling',
  baseline: 'connect-redis-tuned',
  async setup () {
    const cleanups: Array<() => unknown> = []
    const redis = await startRedis({ teardown: (fn) => { cleanups.push(fn) } })
    return {
      env: { REDIS_URL: redis.url },
      teardown: async () => { for (const fn of cleanups.reverse()) await fn() }
    }
  },
  variants: [
    { name: 'bare', server: new URL('./servers/bare.ts', import.meta.url), requests: () => [{ path: '/me' }] },
    { name: 'connect-redis', server: new URL('./servers/connect-redis.ts', import.meta.url), requests: manyUsersRead },
    { name: 'connect-redis-tuned', server: new URL('./servers/connect-redis-tuned.ts', import.meta.url), requests: manyUsersRead },
    { name: 'headroom', server: new URL('./servers/headroom.ts', import.meta.url), requests: manyUsersRead },
    { name: 'headroom-no-hot', server: new URL('./servers/headroom-no-hot.ts', import.meta.url), requests: manyUsersRead }
  ],
  // the lowest of three full runs with the plugin's own request.session (tuned 1.22, 1.47, 1.68;
  // as shipped 1.40, 2.00, 2.57; the 1.22 and 1.40 at load average 16–19) minus the harness's
  // noise (0.9–1.1 on bare vs bare): the 1.5× goal was met in two runs of three (README)
  checks: [
    { variant: 'headroom', against: 'connect-redis-tuned', min: 1.1 },
    { variant: 'headroom', against: 'connect-redis', min: 1.3 }
  ]
})
