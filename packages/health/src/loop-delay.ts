import { performance } from 'node:perf_hooks'

/** How often the probe timer fires (ms); its lateness is one delay sample. Under-pressure's resolution. */
export const LOOP_DELAY_RESOLUTION_MS = 10

export interface LoopDelayOptions {
  sampleIntervalMs: number
  resolutionMs?: number
  /** Called with each window's mean delay (ms), after it is stored. */
  onSample?: (meanMs: number) => void
}

/**
 * Mean event-loop delay per sample window, measured so that no stall is lost.
 *
 * Under-pressure reads `monitorEventLoopDelay()` and resets it at every
 * sample, and a reset forgets when the histogram's timer last fired: when a
 * stall starts within one resolution after a reset, the histogram never
 * records it. Measured here: one 300 ms block in about twenty went unseen,
 * so a blocked process kept taking traffic (packages/health/test/
 * loop-delay.test.ts). This probe is a timer of its own whose lateness is the
 * sample, and a window that closes while the probe is overdue counts the
 * overdue time itself, so every stall lands in the first window that ends
 * after it. The value has under-pressure's meaning: the mean lateness of a
 * timer due every `resolutionMs`.
 */
export class LoopDelay {
  readonly #resolution: number
  readonly #onSample: ((meanMs: number) => void) | undefined
  readonly #probe: NodeJS.Timeout
  readonly #sampler: NodeJS.Timeout
  #last = performance.now()
  #sum = 0
  #count = 0
  #mean = 0

  constructor ({ sampleIntervalMs, resolutionMs = LOOP_DELAY_RESOLUTION_MS, onSample }: LoopDelayOptions) {
    this.#resolution = resolutionMs
    this.#onSample = onSample
    this.#probe = setInterval(() => this.#record(performance.now()), resolutionMs).unref()
    this.#sampler = setInterval(() => this.#sample(), sampleIntervalMs).unref()
  }

  /** The mean delay (ms) over the last complete window. */
  get meanMs (): number {
    return this.#mean
  }

  stop (): void {
    clearInterval(this.#probe)
    clearInterval(this.#sampler)
  }

  #record (now: number): void {
    const late = now - this.#last - this.#resolution
    this.#sum += late > 0 ? late : 0
    this.#count++
    this.#last = now
  }

  #sample (): void {
    const now = performance.now()
    // the probe is overdue: the loop was blocked and this timer ran first;
    // count the stall in this window (the probe then measures from now)
    if (now - this.#last > this.#resolution) this.#record(now)
    this.#mean = this.#count === 0 ? 0 : this.#sum / this.#count
    this.#sum = 0
    this.#count = 0
    this.#onSample?.(this.#mean)
  }
}
