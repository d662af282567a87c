import type { FastifyServerOptions } from 'fastify'

/** The HTTP server's limits on slow and idle clients, from the environment (config.ts). */
export interface ServerTimeouts {
  /** the whole request head must arrive within this, or 408 and the connection is closed */
  headersTimeoutMs: number
  /** the whole request, head and body, must arrive within this, or 408 and the connection is closed */
  requestTimeoutMs: number
  /** an idle keep-alive connection is closed after this; keep it above the load balancer's own idle timeout */
  keepAliveTimeoutMs: number
}

/**
 * Fastify's options for them. Node checks the header and request timeouts
 * on a timer (`connectionsCheckingInterval`, 30 s by default, which would
 * let a slow client hold its socket up to 30 s past the limit); here it
 * runs every second, or at half the headers timeout when that is shorter.
 * A keep-alive timeout above the balancer's means the balancer always closes
 * an idle upstream connection first, so it never sends a request on a socket
 * the instance is closing (a 502).
 */
export function serverOptions (timeouts: ServerTimeouts): Pick<FastifyServerOptions, 'requestTimeout' | 'keepAliveTimeout'> & { http: { headersTimeout: number, requestTimeout: number, connectionsCheckingInterval: number } } {
  return {
    requestTimeout: timeouts.requestTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    http: {
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeouts.headersTimeoutMs / 2)))
    }
  }
}
