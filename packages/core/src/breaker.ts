import { CircuitOpen } from './errors.js'

export type CircuitState = 'closed' | 'open' | 'half-open'

export interface CircuitBreakerOptions {
  /** shown in errors and logs */
  name: string
  /**
   * Consecutive failures that open the circuit.
   * @default 3
   */
  failureThreshold?: number
  /**
   * How long the circuit stays open before one probe call is let through;
   * doubles after each failed probe up to `maxResetTimeoutMs`.
   * @default 1000
   */
  resetTimeoutMs?: number
  /**
   * Cap of the doubling back-off: a dependency that has come back is found
   * again within this long.
   * @default 5000
   */
  maxResetTimeoutMs?: number
  /** called on every state change, e.g. to set a gauge and log a line */
  onStateChange?: (state: CircuitState, previous: CircuitState) => void
  /** injectable clock for tests */
  now?: () => number
}

export const DEFAULT_FAILURE_THRESHOLD = 3
export const DEFAULT_RESET_TIMEOUT_MS = 1000
export const DEFAULT_MAX_RESET_TIMEOUT_MS = 5000

/**
 * A circuit breaker: after `failureThreshold` consecutive failures it stops
 * calling the dependency and fails at once (`CircuitOpen`), so an outage
 * costs callers nothing after the first few; after a back-off it lets one
 * probe through and closes again when the probe succeeds.
 */
export class CircuitBreaker {
  readonly name: string
  #state: CircuitState = 'closed'
  #failures = 0
  #openedAt = 0
  #probeInFlight = false
  #resetTimeoutMs: number
  readonly #baseResetTimeoutMs: number
  readonly #maxResetTimeoutMs: number
  readonly #threshold: number
  readonly #onStateChange: CircuitBreakerOptions['onStateChange']
  readonly #now: () => number

  constructor (options: CircuitBreakerOptions) {
    this.name = options.name
    this.#threshold = options.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD
    this.#baseResetTimeoutMs = options.resetTimeoutMs ?? DEFAULT_RESET_TIMEOUT_MS
    this.#resetTimeoutMs = this.#baseResetTimeoutMs
    this.#maxResetTimeoutMs = options.maxResetTimeoutMs ?? DEFAULT_MAX_RESET_TIMEOUT_MS
    this.#onStateChange = options.onStateChange
    this.#now = options.now ?? Date.now
    if (!Number.isInteger(this.#threshold) || this.#threshold < 1) throw new TypeError('failureThreshold must be an integer >= 1')
    if (!(this.#baseResetTimeoutMs > 0)) throw new TypeError('resetTimeoutMs must be > 0')
    if (!(this.#maxResetTimeoutMs >= this.#baseResetTimeoutMs)) throw new TypeError('maxResetTimeoutMs must be >= resetTimeoutMs')
  }

  get state (): CircuitState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#resetTimeoutMs) return 'half-open'
    return this.#state
  }

  /** True when a call would be attempted now (closed, or half-open with no probe in flight). */
  get allowsCall (): boolean {
    const state = this.state
    return state === 'closed' || (state === 'half-open' && !this.#probeInFlight)
  }

  #transition (next: CircuitState): void {
    const previous = this.#state
    if (previous === next) return
    this.#state = next
    this.#onStateChange?.(next, previous)
  }

  /** Records a success: closes the circuit and resets the back-off. */
  success (): void {
    this.#failures = 0
    this.#resetTimeoutMs = this.#baseResetTimeoutMs
    this.#transition('closed')
  }

  /** Records a failure: opens the circuit at the threshold, or again after a failed probe with a longer back-off. */
  failure (): void {
    this.#failures++
    const wasProbe = this.#state === 'open' || this.#state === 'half-open'
    if (wasProbe) {
      this.#resetTimeoutMs = Math.min(this.#resetTimeoutMs * 2, this.#maxResetTimeoutMs)
      this.#openedAt = this.#now()
      this.#transition('open')
    } else if (this.#failures >= this.#threshold) {
      this.#openedAt = this.#now()
      this.#transition('open')
    }
  }

  /** Runs `fn` through the breaker; throws `CircuitOpen` without calling it while open. */
  async exec<T> (fn: () => Promise<T>): Promise<T> {
    if (!this.allowsCall) throw new CircuitOpen(this.name)
    const probing = this.state === 'half-open'
    if (probing) this.#probeInFlight = true
    try {
      const result = await fn()
      this.success()
      return result
    } catch (err) {
      this.failure()
      throw err
    } finally {
      if (probing) this.#probeInFlight = false
    }
  }
}
