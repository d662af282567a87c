import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { defineScenario } from '@headroom/benchmarks'

const server = new URL(import.meta.resolve('finance-api/bench/hello-traced'))
export type { default as HelloTraced } from 'finance-api/bench/hello-traced'

let receiverUrl = 'http://127.0.0.1:4318'
const traced = (mode: string) => ({ HELLO_TRACING: mode, OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl, OTEL_TRACES_SAMPLER: 'always_on' })

/**
 * Why the example makes its own server spans: on a hello route, every
 * request traced and exported over OTLP/HTTP to a receiver that discards,
 * the example's one span per request (tracing.ts) against the official
 * @fastify/otel (a span per request, hook and handler), both against bare
 * Fastify.
 */
export default defineScenario({
  kind: 'http',
  name: 'tracing-hello',
  description: 'Hello route at 100 % sampling over OTLP/HTTP: the example\'s own server spans vs @fastify/otel, against untraced Fastify.',
  baseline: 'untraced',
  variants: [
    { name: 'untraced', server, env: { HELLO_TRACING: 'off' } },
    { name: 'own spans', server, get env () { return traced('own') } },
    { name: '@fastify/otel', server, get env () { return traced('fastify-otel') } }
  ],
  requests: () => [{ path: '/' }],
  async setup () {
    const receiver = createServer((req, res) => {
      req.resume()
      req.on('end', () => res.writeHead(200).end())
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
    return { teardown: () => new Promise<void>((resolve) => receiver.close(() => resolve())) }
  },
  checks: [{ variant: 'own spans', against: '@fastify/otel', min: 1 }]
})
