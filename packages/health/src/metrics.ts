import { METHODS } from 'node:http'
import { FastHistogram, metric, type Observer } from '@headroom/core/contracts'
import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client'
import type { CachedResult } from './checks.js'

/** The route label of every request that matched no route: one bucket, whatever the URL. */
export const UNKNOWN_ROUTE = '__unknown__'

/** Marks a route's config (probes, /metrics) so its requests are not counted as traffic. */
export const kNotTraffic = Symbol.for('headroom.health.notTraffic')

const METHOD_INDEX = new Map(METHODS.map((m, i) => [m, i]))

interface RouteSeries {
  route: string
  /** by status code × method: no label hashing on the request path */
  series: Map<number, Observer>
}

type TrackedSocket = object & { once: (event: 'close', fn: () => void) => unknown }

/**
 * The HTTP metrics: a duration histogram by method, route template and
 * status (404s under one `__unknown__` route, so URLs never become labels)
 * and the requests in flight.
 */
export class HttpMetrics {
  /** core's FastHistogram: prom-client's `observe()` validates and hashes the labels on every call, which is most of what fastify-metrics costs */
  readonly duration: FastHistogram
  inFlight = 0
  readonly #routes = new WeakMap<object, RouteSeries | null>()
  /** requests being answered on each connection; a socket is never extended with properties of ours */
  readonly #active = new WeakMap<object, number>()

  constructor (registry: Registry, buckets: number[]) {
    this.duration = FastHistogram.in(registry, 'headroom_health_http_request_duration_seconds',
      'HTTP request duration by method, route template and status code; unmatched URLs are route="__unknown__"',
      ['method', 'route', 'status_code'], buckets)
    const self = this
    metric(registry, 'headroom_health_http_requests_in_flight', (registers) => new Gauge({
      name: 'headroom_health_http_requests_in_flight',
      help: 'HTTP requests received and not yet answered (probes and /metrics excluded)',
      registers,
      collect () { this.set(self.inFlight) }
    }))
  }

  /**
   * A request starts. A client that goes away before its answer gets no
   * onResponse, so its socket's close settles the count: one listener per
   * connection, not one per request.
   */
  start (socket: TrackedSocket | null | undefined): void {
    this.inFlight++
    if (!socket) return
    const active = this.#active.get(socket)
    if (active === undefined) {
      socket.once('close', () => {
        this.inFlight -= this.#active.get(socket) ?? 0
        this.#active.set(socket, 0)
      })
      this.#active.set(socket, 1)
    } else {
      this.#active.set(socket, active + 1)
    }
  }

  /** A request is answered (or was not traffic after all); false when its socket's close already counted it. */
  end (socket: TrackedSocket | null | undefined): boolean {
    if (!socket) {
      this.inFlight--
      return true
    }
    const active = this.#active.get(socket) ?? 0
    if (active <= 0) return false
    this.#active.set(socket, active - 1)
    this.inFlight--
    return true
  }

  /** The series of a route, or null for a route that is not traffic; computed once per route. */
  route (config: Record<PropertyKey, unknown> | undefined, url: string | undefined): RouteSeries | null {
    const key = config ?? HttpMetrics
    let series = this.#routes.get(key)
    if (series === undefined) {
      series = config?.[kNotTraffic] === true ? null : { route: url ?? UNKNOWN_ROUTE, series: new Map() }
      this.#routes.set(key, series)
    }
    return series
  }

  observe (route: RouteSeries, method: string, statusCode: number, seconds: number): void {
    const key = statusCode * 64 + (METHOD_INDEX.get(method) ?? 63)
    let series = route.series.get(key)
    if (series === undefined) {
      series = this.duration.labels(METHOD_INDEX.has(method) ? method : 'OTHER', route.route, String(statusCode))
      route.series.set(key, series)
    }
    series.observe(seconds)
  }
}

export interface StateSource {
  draining: () => boolean
  ready: () => boolean
  usage: () => { eventLoopDelay: number, eventLoopUtilized: number }
  underPressure: () => boolean
}

/** The plugin's own state as gauges, read at scrape time so the request path pays nothing. */
export function stateMetrics (registry: Registry, source: StateSource): { shed: Counter<'reason'>, checks: (results: ReadonlyMap<string, CachedResult>) => void } {
  const gauge = (name: string, help: string, read: () => number) => metric(registry, name, (registers) => new Gauge({
    name, help, registers, collect () { this.set(read()) }
  }))
  gauge('headroom_health_event_loop_delay_seconds', 'Mean event-loop delay over the last pressure sample', () => source.usage().eventLoopDelay / 1000)
  gauge('headroom_health_event_loop_utilization', 'Event-loop utilisation (0-1) over the last pressure sample', () => source.usage().eventLoopUtilized)
  gauge('headroom_health_under_pressure', '1 while a load-shedding threshold is exceeded', () => Number(source.underPressure()))
  gauge('headroom_health_draining', '1 once a drain has started', () => Number(source.draining()))
  gauge('headroom_health_ready', '1 while readiness answers 200', () => Number(source.ready()))
  const shed = metric(registry, 'headroom_health_shed_requests_total', (registers) => new Counter({
    name: 'headroom_health_shed_requests_total',
    help: 'Requests answered 503 by load shedding, by the threshold that was exceeded',
    labelNames: ['reason'],
    registers
  }))
  const status = metric(registry, 'headroom_health_check_status', (registers) => new Gauge({
    name: 'headroom_health_check_status',
    help: 'Last result of each readiness check: 2 pass, 1 warn, 0 fail',
    labelNames: ['check'],
    registers
  }))
  const duration = metric(registry, 'headroom_health_check_duration_seconds', (registers) => new Gauge({
    name: 'headroom_health_check_duration_seconds',
    help: 'Duration of the last run of each readiness check',
    labelNames: ['check'],
    registers
  }))
  const checks = (results: ReadonlyMap<string, CachedResult>) => {
    status.reset()
    duration.reset()
    for (const [name, r] of results) {
      status.set({ check: name }, r.status === 'pass' ? 2 : r.status === 'warn' ? 1 : 0)
      duration.set({ check: name }, r.durationMs / 1000)
    }
  }
  return { shed, checks }
}

/**
 * Gauges prom-client names with a `_total` suffix, which Prometheus reserves
 * for counters (`promtool check metrics` flags them); each is the sum of the
 * labelled gauge of the same name without the suffix, which stays.
 */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

/** prom-client's process metrics on the hub registry, once per registry. */
export function defaultMetrics (registry: Registry): void {
  if (registry.getSingleMetric('process_cpu_user_seconds_total')) return
  collectDefaultMetrics({ register: registry })
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name)
}
