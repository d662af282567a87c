import type { FastifyInstance } from 'fastify'
import { Registry, type Metric } from 'prom-client'
import { DuplicateCheck } from './errors.js'

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
  readonly registry: Registry
  addCheck (registration: CheckRegistration): void
  removeCheck (name: string): void
  /** the checks registered so far, read at check time so registration order never matters */
  checks (): CheckRegistration[]
}

export const kHub = Symbol.for('headroom.hub')

function createHub (): Hub {
  const registry = new Registry()
  const checks = new Map<string, CheckRegistration>()
  return {
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

/**
 * The hub of the app `fastify` belongs to, created by whichever headroom
 * plugin asks first. Call it from a plugin wrapped in fastify-plugin (as all
 * headroom plugins are), so the hub lands on the context the app registered
 * the plugin in and every sibling plugin finds the same one.
 */
export function getHub (fastify: FastifyInstance): Hub {
  const holder = fastify as unknown as Record<symbol, Hub | undefined>
  let hub = holder[kHub]
  if (!hub) {
    hub = createHub()
    fastify.decorate(kHub as unknown as string, hub)
  }
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
