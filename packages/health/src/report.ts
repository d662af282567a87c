import type { CachedResult } from './checks.js'

export type Status = 'pass' | 'warn' | 'fail'

/** One entry of `checks` in the IETF health-check draft (draft-inadarei-api-health-check-06 §4). */
export interface CheckEntry {
  componentType?: string
  observedValue?: number | string | boolean
  observedUnit?: string
  status: Status
  time: string
  output?: string
}

/** The `application/health+json` body. */
export interface HealthReport {
  status: Status
  serviceId?: string
  releaseId?: string
  description?: string
  output?: string
  checks: Record<string, CheckEntry[]>
}

export const HEALTH_CONTENT_TYPE = 'application/health+json'

const DATASTORES = /^(postgres|pg|redis|mysql|mongo|memcached|sqlite)/i

function componentType (name: string): string {
  const component = name.split(':')[0] ?? name
  if (DATASTORES.test(component)) return 'datastore'
  if (component === 'eventloop' || component === 'memory' || component === 'uptime' || component === 'process') return 'system'
  return 'component'
}

/** A pressure sample shown as checks of their own, so the cause of a 503 is visible. */
export interface PressureSample {
  name: string
  value: number
  unit: string
  /** 0 = threshold off */
  max: number
}

export interface ReportInput {
  results: ReadonlyMap<string, CachedResult>
  pressure: PressureSample[]
  draining: boolean
  info: { serviceId?: string, releaseId?: string, description?: string }
}

/**
 * Readiness: a failing critical check, pressure or a drain fail it (503); a
 * failing non-critical check or a `warn` degrades it (`warn`, 200).
 */
export function readinessReport ({ results, pressure, draining, info }: ReportInput): HealthReport {
  const checks: Record<string, CheckEntry[]> = {}
  const reasons: string[] = []
  let status: Status = 'pass'
  const degrade = (to: Status) => {
    if (to === 'fail' || (to === 'warn' && status === 'pass')) status = to
  }

  for (const [name, r] of results) {
    const entry: CheckEntry = { componentType: componentType(name), status: r.status, time: r.time }
    if (r.observedValue !== undefined) entry.observedValue = r.observedValue
    if (r.observedUnit !== undefined) entry.observedUnit = r.observedUnit
    if (r.output !== undefined) entry.output = r.output
    checks[name] = [entry]
    if (r.status === 'fail' && r.critical) {
      degrade('fail')
      reasons.push(`${name} failed`)
    } else if (r.status !== 'pass') {
      degrade('warn')
    }
  }

  const now = new Date().toISOString()
  for (const p of pressure) {
    const over = p.max > 0 && p.value > p.max
    const entry: CheckEntry = { componentType: 'system', observedValue: p.value, observedUnit: p.unit, status: over ? 'fail' : 'pass', time: now }
    if (over) {
      entry.output = `above the threshold of ${p.max} ${p.unit}`
      degrade('fail')
      reasons.push(`${p.name} under pressure`)
    }
    checks[p.name] = [entry]
  }

  if (draining) {
    degrade('fail')
    reasons.unshift('draining: shutting down')
  }

  const report: HealthReport = { status, ...withoutUndefined(info), checks }
  if (reasons.length > 0) report.output = reasons.join('; ')
  return report
}

/** Liveness: the process answers. Never depends on a dependency. */
export function livenessReport (info: ReportInput['info']): HealthReport {
  return {
    status: 'pass',
    ...withoutUndefined(info),
    checks: {
      'uptime:seconds': [{ componentType: 'system', observedValue: Math.round(process.uptime()), observedUnit: 's', status: 'pass', time: new Date().toISOString() }]
    }
  }
}

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
