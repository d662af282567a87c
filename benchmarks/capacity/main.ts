/**
 * Entry of the capacity run's server process (bundled by process.ts): builds
 * the app named by CAPACITY_SERVER (`app`: the example, `pool`: the pool
 * claim's server) from the environment, listens on 127.0.0.1:0, and tells the
 * parent its URL over IPC. A `close` message or the parent's death closes it.
 */
import buildApp from './server.js'
import buildPool from './pool-server.js'

const build = process.env.CAPACITY_SERVER === 'pool' ? buildPool : buildApp
const app = await build(process.env)
const url = await app.listen({ host: '127.0.0.1', port: 0 })
process.send?.({ type: 'listening', url })

let closing = false
const shutdown = () => {
  if (closing) return
  closing = true
  setTimeout(() => process.exit(1), 10_000).unref()
  app.close().then(() => process.exit(0), () => process.exit(1))
}
process.on('message', (msg: { type?: string }) => { if (msg?.type === 'close') shutdown() })
process.on('disconnect', shutdown)
