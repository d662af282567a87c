import type { FastifyRequest } from 'fastify'
import type { NormalizedOptions, Policy, RateLimitHookName } from './options.js'
import { rejectUnknownOptions } from '@headroom/core'
import { HOOKS, ROUTE_OPTIONS, makePolicy, parseWindow } from './options.js'
import { InvalidOption } from './errors.js'

/** What a route is limited by, resolved once at route registration. */
export interface RouteLimit {
  policy: Policy
  hook: RateLimitHookName
  /** a route-level `keyGenerator` (@fastify/rate-limit's option), replacing the policy's key */
  keyGenerator: ((request: FastifyRequest) => string | number | Promise<string | number>) | undefined
}

/**
 * Resolves a route's `config.rateLimit` (false, absent, or
 * `{ max, timeWindow, groupId, keyGenerator, hook }`):
 * - `groupId` naming a policy from the `policies` option: that policy;
 * - another `groupId`: a group created by the first route that names it
 *   (with its `max`/`timeWindow`); every route naming it shares one quota;
 * - `max`/`timeWindow` alone: a policy of the route's own, named `METHOD /url`.
 * Options @fastify/rate-limit has that would make the limit inaccurate or
 * per-instance (`ban`, `continueExceeding`, functions for `max`, ...) fail here.
 */
export class RouteResolver {
  readonly #options: NormalizedOptions
  /** ad-hoc groups, by groupId */
  readonly #groups = new Map<string, Policy>()
  readonly #default: RouteLimit

  constructor (options: NormalizedOptions) {
    this.#options = options
    this.#default = { policy: options.defaultPolicy, hook: options.defaultPolicy.hook, keyGenerator: undefined }
  }

  get default (): RouteLimit {
    return this.#default
  }

  /** Every policy in use, for metrics initialisation and docs. */
  policies (): Policy[] {
    return [this.#options.defaultPolicy, ...this.#options.policies.values(), ...this.#groups.values()]
  }

  resolve (config: unknown, method: string | string[], url: string): RouteLimit | null {
    const setting = (config as { rateLimit?: unknown } | undefined)?.rateLimit
    if (setting === false) return null
    if (setting === undefined || setting === null) return this.#default
    // Fastify's automatic HEAD route shares its GET route's policy: HEAD must not double the quota.
    const methods = (Array.isArray(method) ? method : [method]).map((m) => m === 'HEAD' ? 'GET' : m)
    const route = `${[...new Set(methods)].join(',')} ${url}`
    const where = `config.rateLimit of ${route}`
    if (typeof setting !== 'object') throw new InvalidOption(where, 'expected false or an object')
    const input = setting as Record<string, unknown>
    rejectUnknownOptions(input, ROUTE_OPTIONS, (name, reason) => new InvalidOption(name, reason), {}, where)
    if (input.max !== undefined && typeof input.max !== 'number') {
      throw new InvalidOption(`${where}.max`, 'expected a number (a shared limit cannot vary per request)')
    }
    if (input.timeWindow !== undefined) parseWindow(`${where}.timeWindow`, input.timeWindow)
    if (input.keyGenerator !== undefined && typeof input.keyGenerator !== 'function') {
      throw new InvalidOption(`${where}.keyGenerator`, 'expected a function')
    }
    if (input.hook !== undefined && !HOOKS.includes(input.hook as RateLimitHookName)) {
      throw new InvalidOption(`${where}.hook`, `expected one of ${HOOKS.join(', ')}`)
    }
    const policy = this.#policyOf(where, route, input)
    return {
      policy,
      hook: (input.hook as RateLimitHookName | undefined) ?? policy.hook,
      keyGenerator: input.keyGenerator as RouteLimit['keyGenerator']
    }
  }

  #policyOf (where: string, route: string, input: Record<string, unknown>): Policy {
    const { policies, defaultPolicy, buckets } = this.#options
    const defaults = { limit: defaultPolicy.limit, windowMs: defaultPolicy.windowMs, buckets, hook: defaultPolicy.hook }
    const spec = { limit: input.max, window: input.timeWindow }
    const groupId = input.groupId
    if (groupId === undefined) return makePolicy(where, route, spec, defaults)
    if (typeof groupId !== 'string' || groupId === '') throw new InvalidOption(`${where}.groupId`, 'expected a non-empty string')
    const named = policies.get(groupId)
    if (named) {
      if (spec.limit !== undefined || spec.window !== undefined) {
        throw new InvalidOption(`${where}.max`, `groupId "${groupId}" names a policy; set its limit and window in the policies option`)
      }
      return named
    }
    if (groupId === 'default') return defaultPolicy
    const group = this.#groups.get(groupId)
    if (!group) {
      const created = makePolicy(`${where}.groupId`, groupId, spec, defaults)
      this.#groups.set(groupId, created)
      return created
    }
    if ((spec.limit !== undefined && spec.limit !== group.limit) ||
        (spec.window !== undefined && parseWindow(where, spec.window) !== group.windowMs)) {
      throw new InvalidOption(`${where}.groupId`, `group "${groupId}" is already ${group.limit} per ${group.windowMs} ms; routes of one group share one quota`)
    }
    return group
  }
}
