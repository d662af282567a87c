// One unit on purpose (about 360 lines): the options type with a JSDoc per
// option and its default, the list of known names the compiler checks against
// that type, and the one validation that turns them into settings. Split, the
// type and its validation would drift apart.
import { getHeapStatistics } from 'node:v8'
import { rejectUnknownOptions, type CheckRegistration, type OptionNames } from '@headroom/core/contracts'
import { InvalidOption } from './errors.js'

/** A check the application adds through the plugin's `checks` option; it lands in the same hub as the plugins' checks. */
export interface AppCheck extends CheckRegistration {}

/** Load-shedding thresholds: event-loop delay measured by this plugin (src/loop-delay.ts), the others by @fastify/under-pressure. 0 turns one off. */
export interface PressureOptions {
  /**
   * Mean event-loop delay (ms) over one sample above which application routes answer 503.
   * @default 1000
   */
  maxEventLoopDelayMs?: number
  /**
   * Event-loop utilisation (0–1) over one sample above which application routes answer 503.
   * Off by default: a saturated but healthy server sits near 1.
   * @default 0
   */
  maxEventLoopUtilization?: number
  /**
   * Heap used (bytes) above which application routes answer 503.
   * @default 90% of V8's heap size limit
   */
  maxHeapUsedBytes?: number
  /**
   * Resident set size (bytes) above which application routes answer 503. Off
   * by default: only you know the container's memory limit.
   * @default 0
   */
  maxRssBytes?: number
  /**
   * How often the thresholds are sampled (ms).
   * @default 1000
   */
  sampleIntervalMs?: number
  /**
   * `Retry-After` (seconds) on a request shed by one of the thresholds above.
   * @default 10
   */
  retryAfterSeconds?: number
  /**
   * Application requests in flight on this instance (received, not yet
   * answered; probes, /metrics and shed requests not counted) at which a new
   * one answers 503 `HEADROOM_HEALTH_OVERLOADED` at once, in the first
   * onRequest hook, before it reaches a pool or a timeout. Set it below what
   * the instance's deepest bounded queue holds (for @headroom/pool: `max +
   * maxWaiting` of a pool, when a request waits for one connection at a time).
   * 0 turns it off.
   * @default 0
   */
  maxInFlight?: number
  /**
   * `Retry-After` (seconds) on a request shed by `maxInFlight`: an excess of
   * requests in flight passes within a moment, unlike a stalled event loop.
   * @default 1
   */
  inFlightRetryAfterSeconds?: number
}

export interface MetricsOptions {
  /** @default '/metrics' */
  path?: string
  /**
   * Peer addresses or CIDR ranges (IPv4 or IPv6) allowed to read /metrics.
   * Matched against the socket's peer address, never X-Forwarded-For, and a
   * request relayed by a proxy (X-Forwarded-For, Forwarded or X-Real-IP
   * present) is refused unless it carries the token: a public load balancer
   * inside the private network cannot expose /metrics.
   * `[]` allows no address (token only).
   * @default DEFAULT_METRICS_ALLOW (loopback and private ranges)
   */
  allow?: string[]
  /** A bearer token that grants access from any address (`Authorization: Bearer <token>`). @default undefined (addresses only) */
  token?: string
  /**
   * prom-client's `collectDefaultMetrics` on the hub registry (process CPU,
   * memory, GC, handles, event-loop lag); `false` turns it off.
   * @default true
   */
  defaultMetrics?: boolean
  /**
   * Buckets (seconds) of the HTTP request duration histogram.
   * @default DEFAULT_DURATION_BUCKETS
   */
  buckets?: number[]
}

export interface HealthOptions {
  /** @default '/health' */
  livenessPath?: string
  /** @default '/health/ready' */
  readinessPath?: string
  /**
   * How often the readiness checks run in the background (ms). Probes read
   * the cached result and never run a check themselves.
   * @default 5000
   */
  checkIntervalMs?: number
  /**
   * How long one check may take before it counts as failed (ms); at most `checkIntervalMs`.
   * @default 2000
   */
  checkTimeoutMs?: number
  /** Extra checks of the application's own, added to the hub next to the plugins' checks. @default [] */
  checks?: AppCheck[]
  /** Load-shedding thresholds; `false` turns load shedding off. @default {} (the PressureOptions defaults) */
  pressure?: PressureOptions | false
  /** /metrics; `false` serves none (the metrics are still collected in the hub registry). @default {} (the MetricsOptions defaults) */
  metrics?: MetricsOptions | false
  /**
   * Drain on SIGTERM and SIGINT. `false` for tests and for embedders who call
   * `fastify.health.drain()` themselves.
   * @default true
   */
  handleSignals?: boolean
  /**
   * How long the server keeps serving after a signal, with readiness failing,
   * before it stops accepting connections (ms). At least one readiness probe
   * period so every load balancer has seen the instance leave.
   * @default 10000
   */
  drainDelayMs?: number
  /**
   * Bound on finishing in-flight requests and closing dependencies once the
   * server stops accepting (ms). Past it, open connections are destroyed and
   * the process exits 1.
   * @default 10000
   */
  drainTimeoutMs?: number
  /**
   * Called with the exit code when a signal-triggered drain ends (0, or 1
   * when forced). Tests and embedders replace it.
   * @default process.exit
   */
  exit?: (code: number) => void
  /** `serviceId` of the IETF health response. @default undefined (not sent) */
  serviceId?: string
  /** `releaseId` of the IETF health response. @default undefined (not sent) */
  releaseId?: string
  /** `description` of the IETF health response. @default undefined (not sent) */
  description?: string
}

/** @default '/health' */
export const DEFAULT_LIVENESS_PATH = '/health'
/** @default '/health/ready' */
export const DEFAULT_READINESS_PATH = '/health/ready'
/** @default '/metrics' */
export const DEFAULT_METRICS_PATH = '/metrics'
/** @default 5000: a fresh answer for a 10 s Kubernetes probe period, at most one query per dependency every 5 s */
export const DEFAULT_CHECK_INTERVAL_MS = 5000
/** @default 2000 */
export const DEFAULT_CHECK_TIMEOUT_MS = 2000
/** @default 1000 */
export const DEFAULT_MAX_EVENT_LOOP_DELAY_MS = 1000
/** @default 0 (off) */
export const DEFAULT_MAX_EVENT_LOOP_UTILIZATION = 0
/** @default 0.9: 90% of V8's heap size limit */
export const DEFAULT_MAX_HEAP_FRACTION = 0.9
/** @default 0 (off) */
export const DEFAULT_MAX_RSS_BYTES = 0
/** @default 1000 */
export const DEFAULT_SAMPLE_INTERVAL_MS = 1000
/** @default 10 */
export const DEFAULT_RETRY_AFTER_SECONDS = 10
/** @default 0 (off) */
export const DEFAULT_MAX_IN_FLIGHT = 0
/** @default 1 */
export const DEFAULT_IN_FLIGHT_RETRY_AFTER_SECONDS = 1
/** @default 10000: Kubernetes' default readiness period (10 s) */
export const DEFAULT_DRAIN_DELAY_MS = 10_000
/** @default 10000: drain delay + drain timeout stay inside Kubernetes' default 30 s grace period */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000
/** @default loopback, RFC 1918 private, IPv6 unique-local and link-local ranges */
export const DEFAULT_METRICS_ALLOW: readonly string[] = Object.freeze([
  '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16',
  '::1/128', 'fc00::/7', 'fe80::/10'
])
/** @default seconds, 5 ms to 10 s */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

export interface NormalizedPressure {
  maxEventLoopDelayMs: number
  maxEventLoopUtilization: number
  maxHeapUsedBytes: number
  maxRssBytes: number
  sampleIntervalMs: number
  retryAfterSeconds: number
  maxInFlight: number
  inFlightRetryAfterSeconds: number
}

export interface NormalizedMetrics {
  path: string
  allow: string[]
  token: string | undefined
  defaultMetrics: boolean
  buckets: number[]
}

export interface NormalizedOptions {
  livenessPath: string
  readinessPath: string
  checkIntervalMs: number
  checkTimeoutMs: number
  checks: AppCheck[]
  pressure: NormalizedPressure | false
  metrics: NormalizedMetrics | false
  handleSignals: boolean
  drainDelayMs: number
  drainTimeoutMs: number
  exit: (code: number) => void
  info: { serviceId?: string, releaseId?: string, description?: string }
}

function fail (option: string, message: string): never {
  throw new InvalidOption(option, message)
}

function path (option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !value.startsWith('/')) fail(option, 'must be a path starting with "/"')
  return value
}

function ms (option: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) fail(option, `must be a finite number >= ${min}`)
  return value
}

function count (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(option, 'must be an integer >= 0 (0 turns it off)')
  return value
}

function optionalString (option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '') fail(option, 'must be a non-empty string')
  return value
}

function normalizePressure (opts: PressureOptions | false | undefined): NormalizedPressure | false {
  if (opts === false) return false
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) fail('pressure', 'must be an object or false')
  const p = opts ?? {}
  const utilization = ms('pressure.maxEventLoopUtilization', p.maxEventLoopUtilization, DEFAULT_MAX_EVENT_LOOP_UTILIZATION, 0)
  if (utilization > 1) fail('pressure.maxEventLoopUtilization', 'must be between 0 and 1 (0 turns it off)')
  return {
    maxEventLoopDelayMs: ms('pressure.maxEventLoopDelayMs', p.maxEventLoopDelayMs, DEFAULT_MAX_EVENT_LOOP_DELAY_MS, 0),
    maxEventLoopUtilization: utilization,
    maxHeapUsedBytes: ms('pressure.maxHeapUsedBytes', p.maxHeapUsedBytes, Math.floor(getHeapStatistics().heap_size_limit * DEFAULT_MAX_HEAP_FRACTION), 0),
    maxRssBytes: ms('pressure.maxRssBytes', p.maxRssBytes, DEFAULT_MAX_RSS_BYTES, 0),
    sampleIntervalMs: ms('pressure.sampleIntervalMs', p.sampleIntervalMs, DEFAULT_SAMPLE_INTERVAL_MS, 10),
    retryAfterSeconds: ms('pressure.retryAfterSeconds', p.retryAfterSeconds, DEFAULT_RETRY_AFTER_SECONDS, 0),
    maxInFlight: count('pressure.maxInFlight', p.maxInFlight, DEFAULT_MAX_IN_FLIGHT),
    inFlightRetryAfterSeconds: ms('pressure.inFlightRetryAfterSeconds', p.inFlightRetryAfterSeconds, DEFAULT_IN_FLIGHT_RETRY_AFTER_SECONDS, 0)
  }
}

function normalizeMetrics (opts: MetricsOptions | false | undefined): NormalizedMetrics | false {
  if (opts === false) return false
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) fail('metrics', 'must be an object or false')
  const m = opts ?? {}
  const allow = m.allow ?? [...DEFAULT_METRICS_ALLOW]
  if (!Array.isArray(allow) || allow.some((a) => typeof a !== 'string' || a === '')) fail('metrics.allow', 'must be an array of addresses or CIDR ranges')
  const buckets = m.buckets ?? [...DEFAULT_DURATION_BUCKETS]
  if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b, i) => typeof b !== 'number' || !(b > 0) || (i > 0 && b <= (buckets[i - 1] as number)))) {
    fail('metrics.buckets', 'must be a non-empty array of increasing positive numbers (seconds)')
  }
  if (m.defaultMetrics !== undefined && typeof m.defaultMetrics !== 'boolean') fail('metrics.defaultMetrics', 'must be a boolean')
  return {
    path: path('metrics.path', m.path, DEFAULT_METRICS_PATH),
    allow,
    token: optionalString('metrics.token', m.token),
    defaultMetrics: m.defaultMetrics ?? true,
    buckets
  }
}

const KNOWN: OptionNames<HealthOptions> = {
  livenessPath: true,
  readinessPath: true,
  checkIntervalMs: true,
  checkTimeoutMs: true,
  checks: true,
  pressure: true,
  metrics: true,
  handleSignals: true,
  drainDelayMs: true,
  drainTimeoutMs: true,
  exit: true,
  serviceId: true,
  releaseId: true,
  description: true
}
const KNOWN_PRESSURE: OptionNames<PressureOptions> = {
  maxEventLoopDelayMs: true,
  maxEventLoopUtilization: true,
  maxHeapUsedBytes: true,
  maxRssBytes: true,
  sampleIntervalMs: true,
  retryAfterSeconds: true,
  maxInFlight: true,
  inFlightRetryAfterSeconds: true
}
const KNOWN_METRICS: OptionNames<MetricsOptions> = { path: true, allow: true, token: true, defaultMetrics: true, buckets: true }
/** @fastify/under-pressure's names for our options, so a migration gets a useful message */
const RENAMED = {
  maxEventLoopDelay: 'thresholds live under `pressure`: `pressure.maxEventLoopDelayMs`',
  maxEventLoopUtilization: 'thresholds live under `pressure`: `pressure.maxEventLoopUtilization`',
  maxHeapUsedBytes: 'thresholds live under `pressure`: `pressure.maxHeapUsedBytes`',
  maxRssBytes: 'thresholds live under `pressure`: `pressure.maxRssBytes`',
  healthCheck: 'add it to `checks` ({ name: "component:measurement", check })',
  exposeStatusRoute: 'the routes are `livenessPath` and `readinessPath`'
}
const invalid = (name: string, reason: string): Error => new InvalidOption(name, reason)

/** Validates every option (one check, one message each) and fills the defaults. */
export function normalizeOptions (opts: HealthOptions = {}): NormalizedOptions {
  if (typeof opts !== 'object' || opts === null) fail('options', 'must be an object')
  rejectUnknownOptions(opts, KNOWN, invalid, RENAMED)
  rejectUnknownOptions(opts.pressure, KNOWN_PRESSURE, invalid, {}, 'pressure')
  rejectUnknownOptions(opts.metrics, KNOWN_METRICS, invalid, {}, 'metrics')
  const checkIntervalMs = ms('checkIntervalMs', opts.checkIntervalMs, DEFAULT_CHECK_INTERVAL_MS, 10)
  const checkTimeoutMs = ms('checkTimeoutMs', opts.checkTimeoutMs, Math.min(DEFAULT_CHECK_TIMEOUT_MS, checkIntervalMs))
  if (checkTimeoutMs > checkIntervalMs) fail('checkTimeoutMs', `must be at most checkIntervalMs (${checkIntervalMs})`)
  const checks = opts.checks ?? []
  if (!Array.isArray(checks)) fail('checks', 'must be an array of { name, check, critical? }')
  checks.forEach((c, i) => {
    if (typeof c !== 'object' || c === null || typeof c.name !== 'string' || !/^[^:\s]+:[^:\s]+$/.test(c.name)) {
      fail(`checks[${i}].name`, 'must be "component:measurement", e.g. "payments-api:reachable"')
    }
    if (typeof c.check !== 'function') fail(`checks[${i}].check`, 'must be a function returning a Promise of { status }')
  })
  if (opts.handleSignals !== undefined && typeof opts.handleSignals !== 'boolean') fail('handleSignals', 'must be a boolean')
  if (opts.exit !== undefined && typeof opts.exit !== 'function') fail('exit', 'must be a function (code) => void')
  const normalized: NormalizedOptions = {
    livenessPath: path('livenessPath', opts.livenessPath, DEFAULT_LIVENESS_PATH),
    readinessPath: path('readinessPath', opts.readinessPath, DEFAULT_READINESS_PATH),
    checkIntervalMs,
    checkTimeoutMs,
    checks,
    pressure: normalizePressure(opts.pressure),
    metrics: normalizeMetrics(opts.metrics),
    handleSignals: opts.handleSignals ?? true,
    drainDelayMs: ms('drainDelayMs', opts.drainDelayMs, DEFAULT_DRAIN_DELAY_MS, 0),
    drainTimeoutMs: ms('drainTimeoutMs', opts.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS),
    exit: opts.exit ?? ((code) => process.exit(code)),
    info: {
      serviceId: optionalString('serviceId', opts.serviceId),
      releaseId: optionalString('releaseId', opts.releaseId),
      description: optionalString('description', opts.description)
    }
  }
  const paths = [normalized.livenessPath, normalized.readinessPath, normalized.metrics && normalized.metrics.path].filter(Boolean)
  if (new Set(paths).size !== paths.length) fail('livenessPath', 'livenessPath, readinessPath and metrics.path must differ')
  return normalized
}
