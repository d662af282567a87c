import { defineScenario } from '@headroom/benchmarks'

const server = new URL('./servers/bare.ts', import.meta.url)

/**
 * The same bare Fastify server twice. Its ratio is the harness's own noise:
 * any other scenario's ratio closer to 1 than this one's spread says nothing.
 */
export default defineScenario({
  kind: 'http',
  name: 'bare-vs-bare',
  description: 'Bare Fastify vs bare Fastify, GET / returning a small JSON: the noise floor of the harness.',
  baseline: 'bare-a',
  variants: [
    { name: 'bare-a', server },
    { name: 'bare-b', server }
  ],
  checks: [{ variant: 'bare-b', min: 0.9, max: 1.1 }]
})
