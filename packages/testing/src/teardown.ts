/**
 * The one thing a fixture needs from a test: somewhere to register cleanup.
 * tap's `t` fits (`t.teardown`), and so does any object with that method.
 */
export interface TestContext {
  teardown (fn: () => unknown): void
}

type SyncCleanup = () => void
const pending = new Set<SyncCleanup>()
let installed = false

/**
 * Registers a synchronous last-resort cleanup that runs if the process exits
 * (normally, by an uncaught error, or by SIGINT/SIGTERM/SIGHUP) before the
 * test's own teardown did. Returns a function that unregisters it.
 */
export function guardExit (fn: SyncCleanup): () => void {
  install()
  pending.add(fn)
  return () => { pending.delete(fn) }
}

function runAll (): void {
  for (const fn of [...pending]) {
    pending.delete(fn)
    try { fn() } catch { /* best effort: the process is going away */ }
  }
}

function install (): void {
  if (installed) return
  installed = true
  process.on('exit', runAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      runAll()
      // re-raise with the default handler so the exit status tells the truth
      process.kill(process.pid, signal)
    })
  }
}
