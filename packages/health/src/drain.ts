import type { FastifyInstance } from 'fastify'

export interface DrainOptions {
  drainDelayMs: number
  drainTimeoutMs: number
}

export type DrainOutcome = 'clean' | 'forced'

/**
 * The shutdown state machine behind a load balancer: not ready → keep
 * serving for the drain delay (the load balancers see readiness fail and
 * stop sending) → stop accepting, close idle keep-alive connections and let
 * in-flight requests finish → the app's onClose hooks close pools and Redis.
 * Liveness stays 200 throughout: a drain must never look like a dead process.
 * Past `drainTimeoutMs` after the close began, the remaining connections are
 * destroyed and the outcome is `forced`.
 */
export class Drain {
  readonly #fastify: FastifyInstance
  readonly #options: DrainOptions
  #started: Promise<DrainOutcome> | undefined
  #delay: NodeJS.Timeout | undefined
  #wake: (() => void) | undefined
  #closedElsewhere = false
  #forced = false
  /** the listener is closing: a connection whose last request is answered must end, not idle on */
  stopping = false

  constructor (fastify: FastifyInstance, options: DrainOptions) {
    this.#fastify = fastify
    this.#options = options
  }

  get draining (): boolean {
    return this.#started !== undefined
  }

  /** Starts the drain (idempotent); resolves once the app is closed. */
  start (onForce?: () => void): Promise<DrainOutcome> {
    this.#started ??= this.#run(onForce)
    return this.#started
  }

  async #run (onForce: (() => void) | undefined): Promise<DrainOutcome> {
    const { drainDelayMs, drainTimeoutMs } = this.#options
    const log = this.#fastify.log
    log.info({ drainDelayMs, drainTimeoutMs }, 'draining: readiness fails now, still serving during the drain delay')
    // a ref'd timer: the drain delay must elapse even if nothing else keeps the loop alive
    await new Promise<void>((resolve) => {
      this.#wake = resolve
      this.#delay = setTimeout(resolve, drainDelayMs)
    })
    if (this.#closedElsewhere) return 'clean'
    log.info('draining: no longer accepting connections, finishing in-flight requests')
    this.stopping = true
    const started = Date.now()
    const force = setTimeout(() => {
      this.#forced = true
      log.error({ drainTimeoutMs }, 'draining: in-flight requests or onClose hooks did not finish in time, destroying connections')
      this.#fastify.server.closeAllConnections?.()
      onForce?.()
    }, drainTimeoutMs)
    try {
      await this.#fastify.close()
    } finally {
      clearTimeout(force)
    }
    log.info({ ms: Date.now() - started, forced: this.#forced }, 'draining: closed')
    return this.#forced ? 'forced' : 'clean'
  }

  /** The app is closing by other means (onClose): a pending drain delay ends now and the drain does not close again. */
  closing (): void {
    this.#closedElsewhere = true
    clearTimeout(this.#delay)
    this.#wake?.()
  }
}
