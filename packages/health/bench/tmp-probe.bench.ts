import { defineScenario } from '@headroom/benchmarks'
export default defineScenario({
  kind: 'http',
  name: 'tmp-health-probe',
  description: 'temporary',
  baseline: 'bare',
  variants: [
    { name: 'bare', server: new URL('./servers/bare.ts', import.meta.url) },
    { name: 'up', server: '/tmp/hb/up.ts' },
    { name: 'nopressure', server: '/tmp/hb/nopressure.ts' },
    { name: 'nodefault', server: '/tmp/hb/nodefault.ts' },
    { name: 'health', server: new URL('./servers/health.ts', import.meta.url) }
  ],
  requests: () => [{ path: '/users/42' }]
})
