import { METHODS } from 'node:http'
import { metric } from '@headroom/core'
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { CachedResult } from './checks.js'

/** The route label of every request that matched no route: one bucket, whatever the URL. */
export const UNKNOWN_ROUTE = '__unknown__'

/** Marks a route's config (probes, /metrics) so its requests are not counted as traffic. */
export const kNotTraffic = Symbol.for('headroom.health.notTraffic')

type ObserveFn = (value: number) => void

interface RouteSeries {
  route: string
  /** per status code × method, the labelled child, so a request costs no label hashing on a known series */
  children: Map<number, ObserveFn>
}

const METHOD_INDEX = new Map(METHODS.map((m, i) => [m, i]))

/**
 * The HTTP metrics: a duration histogram by method, route template and
 * status (404s under one `__unknown__` route, so URLs never become labels)
 * and the requests in flight.
 */
export class HttpMetrics {
  readonly duration: Histogram<'method' | 'route' | 'status_code'>
  inFlight = 0
  readonly #routes = new WeakMap<object, RouteSeries | null>()

  constructor (registry: Registry, buckets: number[]) {
    this.duration = metric(registry, 'headroom_health_http_request_duration_seconds', (registers) => new Histogram({
      name: 'headroom_health_http_request_duration_seconds',
      help: 'HTTP request duration by method, route template and status code; unmatched URLs are route="__unknown__"',
      labelNames: ['method', 'route', 'status_code'],
      buckets,
      registers
    }))
    const self = this
    metric(registry, 'headroom_health_http_requests_in_flight', (registers) => new Gauge({
      name: 'headroom_health_http_requests_in_flight',
      help: 'HTTP requests received and not yet answered (probes and /metrics excluded)',
      registers,
      collect () { this.set(self.inFlight) }
    }))
  }

  /** The series of a route, or null for a route that is not traffic; computed once per route. */
  route (config: Record<PropertyKey, unknown> | undefined, url: string | undefined): RouteSeries | null {
    const key = config ?? HttpMetrics
    let series = this.#routes.get(key)
    if (series === undefined) {
      series = config?.[kNotTraffic] === true ? null : { route: url ?? UNKNOWN_ROUTE, children: new Map() }
      this.#routes.set(key, series)
    }
    return series
  }

  observe (series: RouteSeries, method: string, statusCode: number, seconds: number): void {
    const key = statusCode * 64 + (METHOD_INDEX.get(method) ?? 63)
    let observe = series.children.get(key)
    if (observe === undefined) {
      observe = this.duration.labels(METHOD_INDEX.has(method) ? method : 'OTHER', series.route, String(statusCode)).observe
      series.children.set(key, observe)
    }
    observe(seconds)
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
