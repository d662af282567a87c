import underPressure from '@fastify/under-pressure'
import { getHub } from '@headroom/core/contracts'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { metricsAccess } from './access.js'
import { CheckRunner } from './checks.js'
import { Drain, type DrainOutcome } from './drain.js'
import { Overloaded, UnderPressure } from './errors.js'
import { LoopDelay } from './loop-delay.js'
import { defaultMetrics, HttpMetrics, kNotTraffic, stateMetrics } from './metrics.js'
import { DEFAULT_DURATION_BUCKETS, normalizeOptions, type HealthOptions, type NormalizedPressure } from './options.js'
import { ShedLog } from './shed-log.js'
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

const kNotCounted = Symbol('headroom.health.notCounted')
/** the reason a request was shed, on the request; Symbol.for: wasShed() answers across copies of this package */
const kShed = Symbol.for('headroom.health.shed')

/**
 * The load-shedding reason when @headroom/health answered this request 503
 * (`inFlight`, `eventLoopDelay`, `eventLoopUtilization`, `heapUsedBytes`,
 * `rssBytes`), else undefined: for an error handler or a log controller
 * that should not log each shed request (the plugin logs each episode).
 */
export function shedReason (request: FastifyRequest): string | undefined {
  return (request as unknown as Record<symbol, string | null | undefined>)[kShed] ?? undefined
}

const plugin: FastifyPluginAsync<HealthOptions> = async (fastify, opts) => {
  const options = normalizeOptions(opts)
  const hub = getHub(fastify)
  for (const check of options.checks) hub.addCheck({ owner: 'app', ...check })

  const drain = new Drain(fastify, options)
  const http = new HttpMetrics(hub.registry, options.metrics ? options.metrics.buckets : [...DEFAULT_DURATION_BUCKETS])

  // Under-pressure samples event-loop utilisation, heap and RSS and decides
  // whether the process is under pressure. It is registered in a context of
  // its own: its decorators cannot clash with an app's own under-pressure,
  // and its per-request hook is replaced by the one below, which also does
  // the metrics, so a request pays for one onRequest hook. Event-loop delay
  // is measured by LoopDelay instead: under-pressure's sampling can miss a
  // whole stall (see loop-delay.ts).
  const pressure: NormalizedPressure = options.pressure || {
    maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0, maxHeapUsedBytes: 0, maxRssBytes: 0, sampleIntervalMs: 1000, retryAfterSeconds: 10, maxInFlight: 0, inFlightRetryAfterSeconds: 1
  }
  const loopDelay = new LoopDelay({ sampleIntervalMs: pressure.sampleIntervalMs })
  const delayed = pressure.maxEventLoopDelayMs > 0
    ? () => loopDelay.meanMs > pressure.maxEventLoopDelayMs
    : () => false
  let sampler!: FastifyInstance
  await fastify.register(async (child) => {
    await child.register(underPressure, {
      maxEventLoopDelay: 0,
      maxEventLoopUtilization: pressure.maxEventLoopUtilization,
      eventLoopUtilizationMode: 'interval',
      maxHeapUsedBytes: pressure.maxHeapUsedBytes,
      maxRssBytes: pressure.maxRssBytes,
      sampleInterval: pressure.sampleIntervalMs
    })
    sampler = child
  })
  const isUnderPressure = (): boolean => delayed() || sampler.isUnderPressure()
  const shedding = options.pressure !== false
  const underPressureError = new UnderPressure()
  const retryAfter = String(pressure.retryAfterSeconds)
  const overloadedError = new Overloaded()
  const inFlightRetryAfter = String(pressure.inFlightRetryAfterSeconds)
  // 0 (off) never sheds: no request count reaches Infinity
  const maxInFlight = shedding && pressure.maxInFlight > 0 ? pressure.maxInFlight : Infinity
  const shedLog = new ShedLog(fastify.log, pressure.sampleIntervalMs)
  const shed = (request: FastifyRequest, reply: FastifyReply, reason: string, seconds: string): void => {
    (request as unknown as Record<symbol, string>)[kShed] = reason
    state.shed.inc({ reason })
    shedLog.shed(reason, { inFlight: http.inFlight })
    reply.code(503).header('retry-after', seconds)
  }

  fastify.decorateRequest(kNotCounted, false)
  fastify.decorateRequest(kShed, null)
  fastify.addHook('onRequest', (request, reply, done) => {
    // while draining, every answer ends its connection: keep-alive clients
    // reconnect (to another instance, once the balancer has dropped this one)
    // and nothing is left idle when the listener closes
    if (drain.draining) reply.header('connection', 'close')
    // Shed first and cheaply: a count compared before anything else runs,
    // so an excess is refused here, not by a pool's queue or a timeout
    // deeper in the stack. A shed request is answered at once and never
    // counted in flight; probes and /metrics are never shed.
    if (shedding && (request.routeOptions.config as unknown as Record<symbol, unknown>)[kNotTraffic] !== true) {
      if (http.inFlight >= maxInFlight) {
        shed(request, reply, 'inFlight', inFlightRetryAfter)
        done(overloadedError)
        return
      }
      if (isUnderPressure()) {
        shed(request, reply, pressureReason(), retryAfter)
        done(underPressureError)
        return
      }
    }
    http.start(request.raw.socket)
    done()
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    // a request that began before the drain carried no `connection: close`;
    // once the listener is closing its keep-alive connection would idle on
    // and hold the close up until the drain timeout: end it now it is answered
    if (drain.stopping) request.raw.socket.end()
    if ((request as unknown as Record<symbol, boolean>)[kNotCounted]) return done()
    if (shedReason(request) === undefined) http.end(request.raw.socket)
    const routeOptions = request.routeOptions
    const route = http.route(routeOptions.config as unknown as Record<PropertyKey, unknown> | undefined, routeOptions.url)
    if (route !== null) http.observe(route, request.method, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })

  /** the threshold exceeded, named as under-pressure names it, for the shed counter */
  const pressureReason = (): string => {
    if (delayed()) return underPressure.TYPE_EVENT_LOOP_DELAY
    const usage = sampler.memoryUsage()
    if (pressure.maxHeapUsedBytes > 0 && usage.heapUsed > pressure.maxHeapUsedBytes) return underPressure.TYPE_HEAP_USED_BYTES
    if (pressure.maxRssBytes > 0 && usage.rssBytes > pressure.maxRssBytes) return underPressure.TYPE_RSS_BYTES
    return underPressure.TYPE_EVENT_LOOP_UTILIZATION
  }
  const pressureSamples = (): PressureSample[] => {
    const usage = sampler.memoryUsage()
    return [
      { name: 'eventloop:delay', value: Math.round(loopDelay.meanMs * 100) / 100, unit: 'ms', max: pressure.maxEventLoopDelayMs },
      { name: 'eventloop:utilization', value: Math.round(usage.eventLoopUtilized * 1000) / 1000, unit: 'ratio', max: pressure.maxEventLoopUtilization },
      { name: 'memory:heapUsed', value: usage.heapUsed, unit: 'bytes', max: pressure.maxHeapUsedBytes },
      { name: 'memory:rss', value: usage.rssBytes, unit: 'bytes', max: pressure.maxRssBytes }
    ]
  }

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

  const state = stateMetrics(hub.registry, {
    draining: () => drain.draining,
    ready: () => readiness().status !== 'fail',
    usage: () => ({ eventLoopDelay: loopDelay.meanMs, eventLoopUtilized: sampler.memoryUsage().eventLoopUtilized }),
    underPressure: isUnderPressure
  })
  if (options.metrics && options.metrics.defaultMetrics) defaultMetrics(hub.registry)

  // Probes and /metrics: never shed (kNotTraffic), never
  // rate limited (@headroom/ratelimit and @fastify/rate-limit skip
  // `rateLimit: false`), never counted as traffic, never logged per request.
  const probeConfig = { rateLimit: false as const, [kNotTraffic]: true }
  const probe = {
    config: probeConfig,
    logLevel: 'warn',
    onRequest: (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      http.end(request.raw.socket);
      (request as unknown as Record<symbol, boolean>)[kNotCounted] = true
      done()
    }
  } as const

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
    loopDelay.stop()
    shedLog.stop()
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
