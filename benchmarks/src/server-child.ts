/**
 * Runs one benchmark server in its own process. argv[2] is the module whose
 * default export builds the app; the port goes back to the harness over IPC.
 */
import { pathToFileURL } from 'node:url'

interface Listenable {
  listen (opts: { port: number, host: string }): Promise<string>
  close (): Promise<unknown>
}

const target = process.argv[2]
if (!target || typeof process.send !== 'function') {
  console.error('usage: forked by the benchmark harness with the server module as its argument')
  process.exit(2)
}

const mod = await import(target.startsWith('file:') ? target : pathToFileURL(target).href) as { default: (env: NodeJS.ProcessEnv) => Promise<Listenable> | Listenable }
const app = await mod.default(process.env)
const address = await app.listen({ port: 0, host: '127.0.0.1' })
process.send({ type: 'listening', url: address })

let closing = false
async function shutdown (): Promise<void> {
  if (closing) return
  closing = true
  const timer = setTimeout(() => process.exit(1), 10_000)
  timer.unref()
  await app.close()
  process.exit(0)
}
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'close') shutdown().catch(() => process.exit(1))
})
// the harness died: do not linger as an orphan
process.on('disconnect', () => { shutdown().catch(() => process.exit(1)) })
