import type { IncomingMessage, ServerResponse } from 'node:http'
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import type { FastifyInstance } from 'fastify'
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-node'
import type { Env } from './env.js'

/**
 * OpenTelemetry tracing, started only when the standard OTEL_* variables ask
 * for it. Without them nothing of the SDK is imported: this module imports
 * only @opentelemetry/api (a no-op without an SDK, which the plugins use
 * anyway) and loads the SDK with import() when tracing is on.
 *
 * Nothing is monkey-patched: the HTTP server spans come from traceHttp below
 * (one span per request, cheaper than @fastify/otel's span per hook, see the
 * README's overhead figures), and the plugins' spans from the API's proxy
 * tracer, which delegates to the provider once it is registered. So the import
 * order does not matter, and server.ts starts tracing in main(), before the
 * app is built, for `pnpm start`, `start:prod`, the image's CMD and the
 * Kubernetes manifest alike (all run dist/server.js).
 */

/** the tracer of the example's own spans (the HTTP server spans) */
export const TRACER_NAME = 'finance-api'
/** @default 'http/protobuf' (the specification's default): OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const

export class TracingConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'TracingConfigError'
  }
}

function value (env: Env, name: string): string | undefined {
  const v = env[name]?.trim()
  return v === undefined || v === '' ? undefined : v
}

/** The exporters OTEL_TRACES_EXPORTER names ([] when it says `none` or tracing is off). */
export function requestedExporters (env: Env): Array<'otlp' | 'console'> {
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return []
  const names = value(env, 'OTEL_TRACES_EXPORTER')?.split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== '')
  if (names === undefined) {
    // unset: the endpoint alone asks for OTLP (an SDK would export to localhost:4318 by default; here nothing starts unless asked)
    return value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined || value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined ? ['otlp'] : []
  }
  if (names.includes('none')) return []
  const unknown = names.filter((n) => n !== 'otlp' && n !== 'console')
  if (unknown.length > 0) throw new TracingConfigError(`OTEL_TRACES_EXPORTER: ${unknown.join(', ')} is not supported here (otlp, console or none)`)
  return [...new Set(names)] as Array<'otlp' | 'console'>
}

function otlpProtocol (env: Env): typeof OTLP_PROTOCOLS[number] {
  const name = value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL'
  const protocol = value(env, name) ?? 'http/protobuf'
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) throw new TracingConfigError(`${name} must be http/protobuf or http/json (got "${protocol}"; grpc is not bundled: point it at a collector's 4318 port)`)
  return protocol as typeof OTLP_PROTOCOLS[number]
}

/**
 * Whether the variables ask for tracing, for loadConfig: a bad value is one
 * more configuration problem, reported with the others before anything starts.
 */
export function tracingRequested (env: Env, problems: string[]): boolean {
  try {
    const exporters = requestedExporters(env)
    if (exporters.includes('otlp')) otlpProtocol(env)
    return exporters.length > 0
  } catch (err) {
    if (!(err instanceof TracingConfigError)) throw err
    problems.push(err.message)
    return false
  }
}

export interface TracingOptions {
  /** the resource's service.name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise */
  service: string
  version: string
  /** deployment.environment.name */
  env: string
  /** tests: export here (through a SimpleSpanProcessor) instead of what the variables name, which must still ask for tracing */
  exporter?: SpanExporter
}

interface Started { flush (): Promise<void>, shutdown (): Promise<void> }
let started: Started | undefined

/** whether startTracing registered a provider in this process */
export function tracingStarted (): boolean {
  return started !== undefined
}

/**
 * Starts the SDK when the variables ask for it (see requestedExporters); false
 * when they do not, and then no SDK module is loaded. The sampler comes from
 * OTEL_TRACES_SAMPLER/_ARG (default parentbased_always_on), the endpoint and
 * headers from OTEL_EXPORTER_OTLP_*, batching from OTEL_BSP_*, the resource
 * from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES: the SDK reads them.
 */
export async function startTracing (env: Env, opts: TracingOptions): Promise<boolean> {
  const exporters = requestedExporters(env)
  if (exporters.length === 0 || started) return false
  const protocol = exporters.includes('otlp') ? otlpProtocol(env) : undefined
  const sdk = await import('@opentelemetry/sdk-trace-node')
  const { detectResources, envDetector, resourceFromAttributes } = await import('@opentelemetry/resources')
  const processors: SpanProcessor[] = []
  if (opts.exporter) {
    processors.push(new sdk.SimpleSpanProcessor(opts.exporter))
  } else {
    for (const name of exporters) {
      if (name === 'console') processors.push(new sdk.BatchSpanProcessor(new sdk.ConsoleSpanExporter()))
      else if (protocol === 'http/json') processors.push(new sdk.BatchSpanProcessor(new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter()))
      else processors.push(new sdk.BatchSpanProcessor(new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter()))
    }
  }
  // the variables win over the package's identity (merge: the argument's attributes override)
  const resource = resourceFromAttributes({ 'service.name': opts.service, 'service.version': opts.version, 'deployment.environment.name': opts.env })
    .merge(detectResources({ detectors: [envDetector] }))
  const provider = new sdk.NodeTracerProvider({ resource, spanProcessors: processors })
  provider.register()
  started = {
    flush: () => provider.forceFlush(),
    async shutdown () {
      started = undefined
      await provider.shutdown()
      trace.disable()
      context.disable()
      propagation.disable()
    }
  }
  return true
}

/** Exports the spans still buffered (the app's close, the end of a drain); a no-op when tracing is off. */
export async function flushTracing (): Promise<void> {
  await started?.flush()
}

/** Flushes and unregisters the provider (tests; a process simply exits after its drain). */
export async function stopTracing (): Promise<void> {
  await started?.shutdown()
}

/** Probes, /metrics and static files: never a span (they would drown the traces and cost on every scrape). */
export function untracedPath (path: string): boolean {
  return path === '/' || path === '/metrics' || path === '/health' || path.startsWith('/health/') || path.startsWith('/assets/') || path === '/favicon.ico'
}

const kSpan = Symbol('finance-api.span')
type TracedMessage = IncomingMessage & { [kSpan]?: Span }
type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

/**
 * The HTTP server span of each request but probes and static files: started
 * when Node hands the request over (so every log line of the request,
 * Fastify's `incoming request` included, runs in its context), a child of an
 * incoming W3C `traceparent`, named `GET /api/summary` once the route is
 * known, ended when the response closes with its status code. The request's
 * own listener is wrapped rather than a serverFactory given, so Fastify keeps
 * creating the server (timeouts, idle connections closed at close).
 */
export function traceHttp (app: FastifyInstance): void {
  const tracer = trace.getTracer(TRACER_NAME)
  const server = app.server
  for (const listener of server.listeners('request') as RequestListener[]) {
    server.removeListener('request', listener)
    server.on('request', (req: TracedMessage, res: ServerResponse) => {
      const url = req.url ?? '/'
      const q = url.indexOf('?')
      const path = q === -1 ? url : url.slice(0, q)
      if (untracedPath(path)) {
        listener(req, res)
        return
      }
      const parent = propagation.extract(ROOT_CONTEXT, req.headers)
      // (the path, never the query string: it may carry what a user typed)
      const span = tracer.startSpan(req.method ?? 'HTTP', { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': path } }, parent)
      req[kSpan] = span
      res.once('close', () => {
        span.setAttribute('http.response.status_code', res.statusCode)
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
        span.end()
      })
      context.with(trace.setSpan(parent, span), listener, undefined, req, res)
    })
  }
  app.addHook('onRequest', (request, reply, done) => {
    const span = (request.raw as TracedMessage)[kSpan]
    if (span?.isRecording() === true) {
      span.setAttribute('request.id', request.id)
      // (undefined on a 404: the span stays named by the method alone, as the conventions say)
      const route = request.routeOptions.url
      if (route !== undefined) {
        span.setAttribute('http.route', route)
        span.updateName(`${request.method} ${route}`)
      }
    }
    done()
  })
}

/** The ids of the active span for a log line: none outside a traced request. */
export function traceFields (): Record<string, string> {
  const span = trace.getActiveSpan()
  if (span === undefined) return {}
  const c = span.spanContext()
  return { trace_id: c.traceId, span_id: c.spanId, trace_flags: c.traceFlags.toString(16).padStart(2, '0') }
}
