import type { FastifyRequest } from 'fastify'
import { normalizeIP } from '@fastify/rate-limit'
import type { NormalizedOptions } from './options.js'

/**
 * The client a request is counted against: `u:<id>` when `identify` returns
 * a user, else `ip:<address>` with IPv6 grouped by `ipv6Subnet` (/64: one
 * household or server, however many addresses it rotates through).
 * `request.ip` honours Fastify's `trustProxy` and nothing else, so a forged
 * X-Forwarded-For from an untrusted peer changes nothing.
 */
export function clientIdentity (options: Pick<NormalizedOptions, 'identify' | 'ipv6Subnet'>): (request: FastifyRequest) => string {
  const { identify, ipv6Subnet } = options
  return (request) => {
    if (identify) {
      const user = identify(request)
      if (typeof user === 'string' && user !== '') return `u:${user}`
    }
    const ip = request.ip
    // IPv4 needs no parsing; normalizeIP handles IPv6 subnets and IPv4-mapped addresses.
    return `ip:${ip.includes(':') ? normalizeIP(ip, ipv6Subnet) : ip}`
  }
}

/**
 * True for requests that are never counted: skipped methods and paths,
 * static assets, and the user's `skip`. Static assets are GET/HEAD requests
 * under a static prefix, or with a static extension when the route that
 * answers them serves files (a wildcard route, a literal route such as
 * `/favicon.ico`, or none): `/users/:id` called as `/users/x.js` is counted,
 * so the extension rule cannot be used to dodge the limit.
 */
export function skipper (options: NormalizedOptions): (request: FastifyRequest) => boolean {
  const { skipMethods, skipPaths, staticPrefixes, staticExtensions, skip } = options
  return (request) => {
    if (skipMethods.has(request.method)) return true
    const url = request.url
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (skipPaths.has(path)) return true
    if ((request.method === 'GET' || request.method === 'HEAD') && isStatic(request, path)) return true
    return skip !== undefined && skip(request)
  }

  function isStatic (request: FastifyRequest, path: string): boolean {
    for (const prefix of staticPrefixes) if (path.startsWith(prefix)) return true
    if (staticExtensions.size === 0) return false
    const slash = path.lastIndexOf('/')
    const dot = path.lastIndexOf('.')
    if (dot <= slash) return false
    if (!staticExtensions.has(path.slice(dot + 1).toLowerCase())) return false
    const route = request.routeOptions.url
    return route === undefined || route.includes('*') || route === path
  }
}
