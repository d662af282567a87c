import { raceTimeout, type CheckRegistration, type HealthCheckResult, type Hub } from '@headroom/core/contracts'

export interface CachedResult extends HealthCheckResult {
  critical: boolean
  /** ISO time the check finished (or timed out) */
  time: string
  durationMs: number
}

export interface RunnerOptions {
  intervalMs: number
  timeoutMs: number
  /** one line per status change, never the check's own secrets */
  onChange?: (name: string, result: CachedResult, previous: CachedResult | undefined) => void
  /** after every round, e.g. to update gauges */
  onRound?: (results: ReadonlyMap<string, CachedResult>) => void
}

const STATUSES = new Set(['pass', 'warn', 'fail'])

/**
 * Runs the hub's checks in the background, every `intervalMs`, each bounded
 * by `timeoutMs`, and keeps the last result of each. Probes only read the
 * cache, so a storm of probes costs a dependency nothing. `hub.checks()` is
 * read at every round, so a plugin registered after this one is picked up.
 * A check still running from an earlier round (it ignored its timeout) is
 * not started again: a stuck dependency never accumulates calls.
 */
export class CheckRunner {
  readonly #hub: Hub
  readonly #options: RunnerOptions
  readonly #results = new Map<string, CachedResult>()
  readonly #running = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #stopped = false

  constructor (hub: Hub, options: RunnerOptions) {
    this.#hub = hub
    this.#options = options
  }

  /** Runs a first round (awaited, bounded by the timeout) and schedules the next ones. */
  async start (): Promise<void> {
    await this.runOnce()
    this.#schedule()
  }

  #schedule (): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.runOnce().finally(() => this.#schedule())
    }, this.#options.intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  /** One round of every registered check; concurrent callers share the round in progress. */
  runOnce (): Promise<void> {
    this.#round ??= this.#runRound().finally(() => { this.#round = undefined })
    return this.#round
  }

  async #runRound (): Promise<void> {
    const registrations = this.#hub.checks()
    const names = new Set(registrations.map((r) => r.name))
    for (const name of this.#results.keys()) if (!names.has(name)) this.#results.delete(name)
    await Promise.all(registrations.map((r) => this.#runCheck(r)))
    this.#options.onRound?.(this.#results)
  }

  async #runCheck (registration: CheckRegistration): Promise<void> {
    const { name } = registration
    const critical = registration.critical ?? true
    const started = performance.now()
    let result: HealthCheckResult
    if (this.#running.has(name)) {
      result = { status: 'fail', output: `still running after ${this.#options.timeoutMs} ms (started in an earlier round)` }
    } else {
      result = await this.#bounded(registration)
    }
    const cached: CachedResult = {
      ...result,
      critical,
      time: new Date().toISOString(),
      durationMs: performance.now() - started
    }
    const previous = this.#results.get(name)
    this.#results.set(name, cached)
    if (previous?.status !== cached.status) this.#options.onChange?.(name, cached, previous)
  }

  #bounded (registration: CheckRegistration): Promise<HealthCheckResult> {
    const { name, check } = registration
    const timeoutMs = this.#options.timeoutMs
    this.#running.add(name)
    let settled: Promise<HealthCheckResult>
    try {
      settled = Promise.resolve(check()).then(validResult, (err: unknown) => ({
        status: 'fail' as const,
        output: err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err)
      }))
    } catch (err) {
      settled = Promise.resolve({ status: 'fail', output: err instanceof Error ? err.message : String(err) })
    }
    settled = settled.finally(() => this.#running.delete(name))
    return raceTimeout(settled, timeoutMs, (): HealthCheckResult => ({ status: 'fail', output: `timed out after ${timeoutMs} ms` }))
  }

  /** The last result of each check that is still registered. */
  results (): ReadonlyMap<string, CachedResult> {
    return this.#results
  }
}

function validResult (value: unknown): HealthCheckResult {
  const result = value as HealthCheckResult | undefined
  if (!result || typeof result !== 'object' || !STATUSES.has(result.status)) {
    return { status: 'fail', output: 'the check did not return { status: "pass" | "warn" | "fail" }' }
  }
  return result
}
