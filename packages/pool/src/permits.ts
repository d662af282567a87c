import { performance } from 'node:perf_hooks'

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
  /** performance.now() past which it fails */
  deadline: number
}

export interface PermitQueueOptions {
  /** callers that may wait for a permit; one more fails at once */
  maxWaiting: number
  /** how long a caller may wait for a permit */
  timeoutMs: number
  /** the error of a caller refused because `maxWaiting` wait already */
  exhausted: (waiting: number) => Error
  /** the error of a caller that waited `timeoutMs` */
  expired: () => Error
}

/**
 * A bounded, deadline-aware FIFO of permits: `permits` callers at a time get
 * through, up to `maxWaiting` more wait (each at most `timeoutMs`) for one to
 * be released, and everyone else fails at once.
 *
 * Every waiter has the same timeout, so deadlines rise along the queue: one
 * timer, set for the oldest waiter, serves them all (a timer per waiter costs
 * about 0.4 µs on the hot path).
 *
 * Busy is not down: after a blocked event loop timers run before sockets are
 * read, so a permit released during the stall (its query's result waiting in
 * the socket) would not yet be back. The expiry waits for the loop's next
 * I/O pass (setImmediate runs after it): releases come first.
 */
export class PermitQueue {
  #permits: number
  readonly #waiters: Waiter[] = []
  readonly #o: PermitQueueOptions
  #timer: NodeJS.Timeout | null = null

  constructor (permits: number, options: PermitQueueOptions) {
    this.#permits = permits
    this.#o = options
  }

  /** callers waiting for a permit */
  get waiting (): number {
    return this.#waiters.length
  }

  /** takes a free permit, if there is one: the path without a promise */
  tryTake (): boolean {
    if (this.#permits <= 0) return false
    this.#permits--
    return true
  }

  /** waits for a permit: rejects at once when `maxWaiting` wait already, else after `timeoutMs` */
  wait (): Promise<void> {
    if (this.#waiters.length >= this.#o.maxWaiting) return Promise.reject(this.#o.exhausted(this.#waiters.length))
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject, deadline: performance.now() + this.#o.timeoutMs })
      if (this.#timer === null) this.#arm(this.#o.timeoutMs)
    })
  }

  /** gives a permit back: to the oldest waiter, if any */
  release (): void {
    const next = this.#waiters.shift()
    if (next !== undefined) next.resolve()
    else this.#permits++
  }

  /** fails every waiter with `err()` and stops the timer; permits released later are only counted */
  close (err: () => Error): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    for (const w of this.#waiters.splice(0)) w.reject(err())
  }

  #arm (ms: number): void {
    this.#timer = setTimeout(() => { setImmediate(() => this.#expire()) }, Math.max(1, ms))
    // the waiters' own promises keep whatever awaits them alive; this timer must not keep the process up
    this.#timer.unref()
  }

  #expire (): void {
    this.#timer = null
    // timers have millisecond granularity: a waiter within 1 ms of its deadline is due
    const now = performance.now() + 1
    while (this.#waiters.length > 0 && this.#waiters[0]!.deadline <= now) {
      this.#waiters.shift()!.reject(this.#o.expired())
    }
    const head = this.#waiters[0]
    if (head !== undefined) this.#arm(head.deadline - performance.now())
  }
}
