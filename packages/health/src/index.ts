import underPressure from '@fastify/under-pressure'
import { getHub } from '@headroom/core'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { metricsAccess } from './access.js'
import { CheckRunner } from './checks.js'
import { Drain, type DrainOutcome } from './drain.js'
import { UnderPressure } from './errors.js'
import { defaultMetrics, HttpMetrics, kNotTraffic, stateMetrics } from './metrics.js'
import { DEFAULT_DURATION_BUCKETS, normalizeOptions, type HealthOptions, type NormalizedPressure } from './options.js'
import { HEALTH_CONTENT_TYPE, livenessReport, readinessReport, type HealthReport, type PressureSample } from './report.js'

export interface HealthControl {
  /** true from the first signal (or `drain()`) on: readiness answers 503 */
  readonly draining: boolean
  /**
   * Starts a drain as a signal would, without exiting: readiness fails at
   * once, the server keeps serving for `drainDelayMs`, then the app closes.
   * Resolves once closed: `clean`, or `forced` when `drainTimeoutMs` ran out.
   */
  drain (): Promise<DrainOutcome>
  /** The readiness report a probe would get now (from the cached check results). */
  readiness (): HealthReport
  /** Runs every check now instead of waiting for the next interval (e.g. in tests). */
  runChecks (): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    health: HealthControl
  }
}

const kRoute = Symbol('headroom.health.route')

const plugin: FastifyPluginAsync<HealthOptions> = async (fastify, opts) => {
  const options = normalizeOptions(opts)
  const hub = getHub(fastify)
  for (const check of options.checks) hub.addCheck({ owner: 'app', ...check })

  // Under-pressure always samples (the gauges and readiness read it); with
  // `pressure: false` every threshold is 0 and it sheds nothing.
  const pressure: NormalizedPressure = options.pressure || {
    maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0, maxHeapUsedBytes: 0, maxRssBytes: 0, sampleIntervalMs: 1000, retryAfterSeconds: 10
  }
  const underPressureError = new UnderPressure()
  await fastify.register(underPressure, {
    maxEventLoopDelay: pressure.maxEventLoopDelayMs,
    maxEventLoopUtilization: pressure.maxEventLoopUtilization,
    eventLoopUtilizationMode: 'interval',
    maxHeapUsedBytes: pressure.maxHeapUsedBytes,
    maxRssBytes: pressure.maxRssBytes,
    sampleInterval: pressure.sampleIntervalMs,
    pressureHandler: (_request, reply, type) => {
      state.shed.inc({ reason: type })
      reply.code(503).header('Retry-After', pressure.retryAfterSeconds)
      return underPressureError as unknown as undefined
    }
  })

  const pressureSamples = (): PressureSample[] => {
    const usage = fastify.memoryUsage()
    return [
      { name: 'eventloop:delay', value: Math.round(usage.eventLoopDelay * 100) / 100, unit: 'ms', max: pressure.maxEventLoopDelayMs },
      { name: 'eventloop:utilization', value: Math.round(usage.eventLoopUtilized * 1000) / 1000, unit: 'ratio', max: pressure.maxEventLoopUtilization },
      { name: 'memory:heapUsed', value: usage.heapUsed, unit: 'bytes', max: pressure.maxHeapUsedBytes },
      { name: 'memory:rss', value: usage.rssBytes, unit: 'bytes', max: pressure.maxRssBytes }
    ]
  }

  const drain = new Drain(fastify, options)
  const runner = new CheckRunner(hub, {
    intervalMs: options.checkIntervalMs,
    timeoutMs: options.checkTimeoutMs,
    onChange: (name, result, previous) => {
      const line = { check: name, status: result.status, previous: previous?.status, output: result.output }
      if (result.status === 'pass') fastify.log.info(line, 'health check recovered')
      else fastify.log.warn(line, 'health check degraded')
    },
    onRound: (results) => state.checks(results)
  })
  const readiness = (): HealthReport => readinessReport({
    results: runner.results(), pressure: pressureSamples(), draining: drain.draining, info: options.info
  })

  const http = new HttpMetrics(hub.registry, options.metrics ? options.metrics.buckets : [...DEFAULT_DURATION_BUCKETS])
  const state = stateMetrics(hub.registry, {
    draining: () => drain.draining,
    ready: () => readiness().status !== 'fail',
    usage: () => fastify.memoryUsage(),
    underPressure: () => fastify.isUnderPressure()
  })
  if (options.metrics && options.metrics.defaultMetrics) defaultMetrics(hub.registry)

  fastify.decorateRequest(kRoute, null)
  fastify.addHook('onRequest', (request, reply, done) => {
    const routeOptions = request.routeOptions
    const series = http.route(routeOptions.config as unknown as Record<PropertyKey, unknown> | undefined, routeOptions.url)
    if (series !== null) {
      (request as unknown as Record<symbol, unknown>)[kRoute] = series
      http.inFlight++
    }
    // while draining, every answer ends its connection: keep-alive clients
    // reconnect (to another instance, once the balancer has dropped this one)
    // and nothing is left idle when the listener closes
    if (drain.draining) reply.header('connection', 'close')
    done()
  })
  const finish = (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const holder = request as unknown as Record<symbol, ReturnType<HttpMetrics['route']>>
    const series = holder[kRoute]
    if (series) {
      holder[kRoute] = null
      http.inFlight--
      http.observe(series, request.method, reply.statusCode, reply.elapsedTime / 1000)
    }
    done()
  }
  fastify.addHook('onResponse', finish)
  fastify.addHook('onRequestAbort', (request, done) => {
    const holder = request as unknown as Record<symbol, unknown>
    if (holder[kRoute]) {
      holder[kRoute] = null
      http.inFlight--
    }
    done()
  })

  // Probes and /metrics: never shed (under-pressure calls a route's own
  // pressureHandler, and one returning nothing lets the request through), never
  // rate limited (@headroom/ratelimit and @fastify/rate-limit skip
  // `rateLimit: false`), never counted as traffic, never logged per request.
  const probeConfig = { rateLimit: false, pressureHandler: () => undefined, [kNotTraffic]: true }
  const probe = { config: probeConfig, logLevel: 'warn' } as const

  fastify.get(options.livenessPath, probe, async (_request, reply) => {
    reply.header('content-type', HEALTH_CONTENT_TYPE).header('cache-control', 'no-store')
    return livenessReport(options.info)
  })

  fastify.get(options.readinessPath, probe, async (_request, reply) => {
    const report = readiness()
    reply.code(report.status === 'fail' ? 503 : 200)
      .header('content-type', HEALTH_CONTENT_TYPE)
      .header('cache-control', 'no-store')
    return report
  })

  if (options.metrics) {
    const allowed = metricsAccess(options.metrics.allow, options.metrics.token)
    fastify.get(options.metrics.path, probe, async (request, reply) => {
      allowed(request)
      reply.header('content-type', hub.registry.contentType).header('cache-control', 'no-store')
      return hub.registry.metrics()
    })
  }

  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      fastify.log.warn({ signal }, 'second signal during the drain: exiting now')
      options.exit(1)
      return
    }
    signalled = true
    fastify.log.info({ signal }, 'signal received: draining')
    const exit = (code: number) => {
      removeListeners()
      options.exit(code)
    }
    drain.start(() => exit(1)).then(
      (outcome) => exit(outcome === 'clean' ? 0 : 1),
      (err: unknown) => {
        fastify.log.error({ err }, 'draining failed')
        exit(1)
      }
    )
  }
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']
  const removeListeners = () => { for (const s of signals) process.removeListener(s, onSignal) }

  fastify.decorate('health', {
    get draining () { return drain.draining },
    drain: () => drain.start(),
    readiness,
    runChecks: () => runner.runOnce()
  } satisfies HealthControl)

  fastify.addHook('onReady', async () => {
    await runner.start()
    if (options.handleSignals) for (const s of signals) process.on(s, onSignal)
  })
  fastify.addHook('onClose', async () => {
    runner.stop()
    drain.closing()
    // a signalled drain keeps listening until it exits, so a second signal forces the exit
    if (!signalled) removeListeners()
  })
}

/** Liveness, readiness, load shedding, graceful drain and /metrics for a Fastify app behind a load balancer. */
export const headroomHealth = fp(plugin, { fastify: '5.x', name: '@headroom/health' })
export default headroomHealth

export * as errors from './errors.js'
export * from './options.js'
export type { HealthReport, CheckEntry, Status } from './report.js'
export type { DrainOutcome } from './drain.js'
export { HEALTH_CONTENT_TYPE } from './report.js'
export { UNKNOWN_ROUTE } from './metrics.js'
