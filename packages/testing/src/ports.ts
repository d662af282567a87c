import { readFileSync } from 'node:fs'
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

/**
 * The lowest port the kernel hands out to outgoing connections (Linux's
 * ip_local_port_range; 32768 elsewhere). A private server picks its port
 * below it: a server the test stops and starts again must find its port free,
 * and a port in the ephemeral range can meanwhile be taken as the local end of
 * any outgoing connection on the machine (its restart then fails to bind).
 */
function ephemeralLow (): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isInteger(low) && low > 12000) return low
  } catch {}
  return 32768
}
const FIRST_PORT = 10000

/** A TCP port on 127.0.0.1 that nothing listens on right now, below the ephemeral range. */
export async function freePort (): Promise<number> {
  return freePortPair(0)
}

/**
 * A free port whose companion `port + offset` is free as well (Redis Cluster's
 * bus listens on port + 10000), both below the ephemeral range.
 */
export async function freePortPair (offset: number): Promise<number> {
  const span = ephemeralLow() - offset - FIRST_PORT
  if (span < 100) throw new Error(`no room for a port pair with offset ${offset} below the ephemeral range`)
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = FIRST_PORT + Math.floor(Math.random() * span)
    if (await tryListen(port, '127.0.0.1') !== null && (offset === 0 || await tryListen(port + offset, '127.0.0.1') !== null)) {
      return port
    }
  }
  throw new Error(`could not find a free port${offset === 0 ? '' : ` pair (offset ${offset})`} on 127.0.0.1`)
}
