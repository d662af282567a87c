import type { FastifyInstance } from 'fastify'
import { Registry, type Metric } from 'prom-client'
import { DuplicateCheck, IncompatibleHub } from './errors.js'

/** The result of one health check, in the shape of the IETF health-check draft. */
export interface HealthCheckResult {
  status: 'pass' | 'warn' | 'fail'
  /** why, for a human; never a secret */
  output?: string
  observedValue?: number | string | boolean
  observedUnit?: string
}

export type HealthCheck = () => Promise<HealthCheckResult>

export interface CheckRegistration {
  /** `component:measurement`, e.g. `postgres:primary`, `redis:session` */
  name: string
  check: HealthCheck
  /**
   * A failing critical check makes the instance not ready (503); a failing
   * non-critical one only degrades it (`warn`, still 200).
   * @default true
   */
  critical?: boolean
  /** which plugin contributed it, e.g. `@headroom/pool` */
  owner?: string
}

/**
 * What the headroom plugins of one app share: one prom-client Registry (never
 * the global default, so two apps in one process do not clash) and the
 * health checks every plugin contributes. @headroom/health serves both.
 */
export interface Hub {
  /** the hub contract this hub speaks (`HUB_CONTRACT` of the core that created it) */
  readonly contract: string
  readonly registry: Registry
  addCheck (registration: CheckRegistration): void
  removeCheck (name: string): void
  /** the checks registered so far, read at check time so registration order never matters */
  checks (): CheckRegistration[]
}

export const kHub = Symbol.for('headroom.hub')

/**
 * The version of the hub's shape (what is above: its fields and methods),
 * `major.minor`. Copies of @headroom/core with the same major share one hub;
 * a different major fails at registration (`HEADROOM_CORE_INCOMPATIBLE_HUB`)
 * instead of two cores reading each other's state wrongly. A minor adds
 * only what a caller can do without. Bump the major on any other change.
 */
export const HUB_CONTRACT = '1.0'

function createHub (): Hub {
  const registry = new Registry()
  const checks = new Map<string, CheckRegistration>()
  return {
    contract: HUB_CONTRACT,
    registry,
    addCheck (registration) {
      if (checks.has(registration.name)) throw new DuplicateCheck(registration.name)
      checks.set(registration.name, registration)
    },
    removeCheck (name) {
      checks.delete(name)
    },
    checks: () => [...checks.values()]
  }
}

const major = (contract: unknown): string => typeof contract === 'string' ? contract.split('.')[0]! : 'unknown'

/**
 * The hub of the app `fastify` belongs to, created by whichever headroom
 * plugin asks first. It is anchored on the app's server (`fastify.server`,
 * the http.Server every encapsulation context of one app shares), not on a
 * context: a plugin registered inside an encapsulated context still reports
 * its checks and metrics to @headroom/health registered anywhere else in the
 * app. The anchor is a `Symbol.for` property, so compatible copies of
 * @headroom/core in one app share the hub; an incompatible copy throws
 * `HEADROOM_CORE_INCOMPATIBLE_HUB`.
 */
export function getHub (fastify: FastifyInstance): Hub {
  const anchor = (fastify.server ?? fastify) as unknown as Record<symbol, Hub | undefined>
  const found = anchor[kHub]
  if (found) {
    if (major(found.contract) !== major(HUB_CONTRACT)) throw new IncompatibleHub(HUB_CONTRACT, String(found.contract ?? 'unknown'))
    return found
  }
  const hub = createHub()
  // not enumerable: the server is the application's object, and this is headroom's private state
  Object.defineProperty(anchor, kHub, { value: hub, configurable: true })
  return hub
}

/**
 * Returns the metric called `name` from `registry`, creating it with `create`
 * when absent: two instances of one plugin in an app share their metrics
 * rather than failing with "already registered".
 */
export function metric<T extends Metric> (registry: Registry, name: string, create: (registers: Registry[]) => T): T {
  const existing = registry.getSingleMetric(name)
  if (existing) return existing as T
  return create([registry])
}
