/**
 * `promise`, or what `onTimeout()` returns (or throws) once `ms` have passed
 * without it settling; the timer is cleared when the race ends and never
 * keeps the process alive. The one timeout race of the packages: each caller
 * says what a timeout is (an error, a fallback value) in `onTimeout`, which
 * may also clean up after the loser (abort it, release what it brings late).
 *
 * `ioPass`: busy is not down. After the event loop was blocked (a long
 * synchronous task, a GC pause, a CPU-starved process), timers run before
 * sockets are read, so a reply that arrived during the stall would still look
 * like a timeout. With `ioPass` the verdict waits for the loop's next I/O
 * pass (`setImmediate` runs after it): a reply already in the socket settles
 * the race first, and a peer that really does not answer costs one poll pass
 * more. Without it the timeout is the timer's (for waits that are not about a
 * peer's reply, or whose callers already give slack).
 */
export function raceTimeout<T, U = never> (promise: Promise<T>, ms: number, onTimeout: () => U, ioPass = false): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined
  let pass: NodeJS.Immediate | undefined
  const late = new Promise<U>((resolve, reject) => {
    const fire = (): void => {
      try {
        resolve(onTimeout())
      } catch (err) {
        reject(err)
      }
    }
    // the immediate is not unref()ed: an unref()ed immediate lets the poll pass
    // block until some other I/O, which with a frozen peer can be seconds away
    timer = setTimeout(ioPass ? () => { pass = setImmediate(fire) } : fire, ms)
    timer.unref()
  })
  return Promise.race([promise, late]).finally(() => {
    clearTimeout(timer)
    if (pass !== undefined) clearImmediate(pass)
  })
}
