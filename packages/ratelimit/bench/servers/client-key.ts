import type { FastifyRequest } from 'fastify'

/**
 * The benchmark's client identity, the same function in every variant: the
 * `x-client-id` header the scenario sends (one value per simulated client),
 * else the address. Every load comes from 127.0.0.1, so without the header
 * every request would be one client.
 */
export function clientKey (request: FastifyRequest): string {
  const id = request.headers['x-client-id']
  return typeof id === 'string' && id !== '' ? id : request.ip
}
