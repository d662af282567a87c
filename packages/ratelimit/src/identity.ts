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

export interface Skipper {
  /** the full rule, for requests whose route is unknown (404s) */
  any: (request: FastifyRequest) => boolean
  /**
   * The rule for requests matched by the route `url`: the path rules
   * (skipped paths, static prefixes and extensions) are left out when no
   * path that route matches can meet them, as for `/` or `/users`
   * (checked loosely: any case, any trailing or doubled slash), so such a
   * route pays only for the method and your `skip`.
   */
  forRoute: (url: string) => (request: FastifyRequest) => boolean
}

/**
 * True for requests that are never counted: skipped methods and paths,
 * static assets, and the user's `skip`. Static assets are GET/HEAD requests
 * under a static prefix, or with a static extension when the route that
 * answers them serves files (a wildcard route, a literal route such as
 * `/favicon.ico`, or none): `/users/:id` called as `/users/x.js` is counted,
 * so the extension rule cannot be used to dodge the limit.
 */
export function skipper (options: NormalizedOptions): Skipper {
  const { skipMethods, skipPaths, staticPrefixes, staticExtensions, skip } = options
  const any = (request: FastifyRequest): boolean => {
    if (skipMethods.has(request.method)) return true
    const url = request.url
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (skipPaths.has(path)) return true
    if ((request.method === 'GET' || request.method === 'HEAD') && isStatic(request, path)) return true
    return skip !== undefined && skip(request)
  }
  const methodOnly = (request: FastifyRequest): boolean =>
    skipMethods.has(request.method) || (skip !== undefined && skip(request))

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

  const loose = (path: string): string => path.toLowerCase().replace(/\/{2,}/g, '/').replace(/\/+$/, '')
  const skipped = [...skipPaths].map(loose)
  const prefixes = staticPrefixes.map(loose)
  function pathRulesMayApply (url: string): boolean {
    // parameters, wildcards and regular expressions match paths we cannot enumerate
    if (/[:*(]/.test(url)) return true
    const route = loose(url)
    if (skipped.includes(route)) return true
    if (prefixes.some((prefix) => route.startsWith(prefix))) return true
    const last = route.slice(route.lastIndexOf('/') + 1)
    return last.includes('.')
  }

  return {
    any,
    forRoute: (url) => pathRulesMayApply(url) ? any : methodOnly
  }
}
