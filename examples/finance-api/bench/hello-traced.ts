import Fastify from 'fastify'
import { startTracing, traceHttp } from '../src/tracing.js'

/**
 * A hello route with the example's own server spans (tracing.ts's traceHttp),
 * or with the official @fastify/otel (HELLO_TRACING=fastify-otel), or with
 * no tracing at all (HELLO_TRACING=off): the tracing-hello scenario.
 */
export default async function build (env: NodeJS.ProcessEnv) {
  const mode = env.HELLO_TRACING ?? 'own'
  if (mode !== 'off') await startTracing(env, { service: 'hello', version: '0.0.0', env: 'production' })
  const app = Fastify({ logger: false })
  if (mode === 'own') traceHttp(app)
  if (mode === 'fastify-otel') {
    const { FastifyOtelInstrumentation } = await import('@fastify/otel')
    await app.register(new FastifyOtelInstrumentation().plugin())
  }
  app.get('/', async () => ({ hello: 'world' }))
  return app
}
