import { defineScenario } from '@headroom/benchmarks'

/**
 * What @headroom/health costs a trivial route: health + metrics registered
 * vs bare Fastify, same route, same run. fastify-metrics at its defaults
 * costs about a third on this kind of route (research/health.md).
 */
export default defineScenario({
  kind: 'http',
  name: 'health-overhead',
  description: 'GET /users/:id with @headroom/health (shedding, HTTP histogram, in-flight, process metrics) vs bare Fastify',
  baseline: 'bare',
  variants: [
    { name: 'bare', server: new URL('./servers/bare.ts', import.meta.url) },
    { name: 'health', server: new URL('./servers/health.ts', import.meta.url) }
  ],
  requests: () => [{ path: '/users/42' }],
  checks: [{ variant: 'health', min: 0.85 }]
})
