import { createServer } from 'node:net'

function tryListen (port: number, host: string): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(null))
    server.listen({ port, host, exclusive: true }, () => {
      const address = server.address()
      const bound = typeof address === 'object' && address !== null ? address.port : null
      server.close(() => resolve(bound))
    })
  })
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort (): Promise<number> {
  const port = await tryListen(0, '127.0.0.1')
  if (port === null) throw new Error('could not find a free port on 127.0.0.1')
  return port
}

/**
 * A free port whose companion `port + offset` is free as well (Redis Cluster's
 * bus listens on port + 10000, so the base must stay below 55536).
 */
export async function freePortPair (offset: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * (65535 - offset - 20000))
    if (await tryListen(port, '127.0.0.1') !== null && await tryListen(port + offset, '127.0.0.1') !== null) {
      return port
    }
  }
  throw new Error(`could not find a free port pair (offset ${offset}) on 127.0.0.1`)
}
