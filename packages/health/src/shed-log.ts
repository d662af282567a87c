import type { FastifyBaseLogger } from 'fastify'

/**
 * One log line when load shedding starts and one when it ends, never one
 * per shed request: under overload a line per refused request would spend
 * the CPU that shedding is there to save. The counter
 * `headroom_health_shed_requests_total` has every request; the end line
 * says how many each reason shed over the episode and how long it lasted.
 * An episode ends after a whole `quietMs` without a shed request; the timer
 * runs only during an episode.
 */
export class ShedLog {
  readonly #log: FastifyBaseLogger
  readonly #quietMs: number
  #episode: { started: number, counts: Record<string, number>, last: number } | null = null
  #timer: NodeJS.Timeout | undefined

  constructor (log: FastifyBaseLogger, quietMs: number) {
    this.#log = log
    this.#quietMs = quietMs
  }

  shed (reason: string, detail: Record<string, unknown>): void {
    const now = Date.now()
    if (this.#episode === null) {
      this.#episode = { started: now, counts: {}, last: now }
      this.#log.warn({ reason, ...detail }, 'load shedding started: application requests answer 503')
      this.#timer = setInterval(() => this.#tick(), this.#quietMs).unref()
    }
    this.#episode.counts[reason] = (this.#episode.counts[reason] ?? 0) + 1
    this.#episode.last = now
  }

  #tick (): void {
    const episode = this.#episode
    if (episode === null || Date.now() - episode.last < this.#quietMs) return
    this.#log.info({ shed: episode.counts, durationMs: episode.last - episode.started }, 'load shedding ended')
    this.stop()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#episode = null
  }
}
