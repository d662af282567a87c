import type { FastifyReply } from 'fastify'
import type { Policy } from './options.js'

/** The IANA problem type of draft-ietf-httpapi-ratelimit-headers-10 for an exhausted quota. */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/**
 * draft-10 fields, RFC 9651 lists of one item each:
 * `RateLimit-Policy: "default";q=500;w=900` and `RateLimit: "default";r=499;t=900`.
 * `t` is the seconds until the count next drops (the oldest counted
 * sub-window leaves the window). No `pk`: the partition key would reveal the
 * identity we count by.
 */
export function setHeaders (reply: FastifyReply, policy: Policy, remaining: number, seconds: number, legacy: boolean, draft: boolean): void {
  if (draft) {
    reply.header('ratelimit-policy', policy.header)
    reply.header('ratelimit', `${policy.item};r=${remaining};t=${seconds}`)
  }
  if (legacy) {
    reply.header('x-ratelimit-limit', policy.limit)
    reply.header('x-ratelimit-remaining', remaining)
    reply.header('x-ratelimit-reset', seconds)
  }
}

export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  instance?: string
  'violated-policies'?: string[]
  code: string
}

export function quotaExceeded (policy: Policy, seconds: number, code: string): Problem {
  return {
    type: QUOTA_EXCEEDED_TYPE,
    title: 'Request cannot be satisfied as assigned quota has been exceeded',
    status: 429,
    detail: `Rate limit "${policy.name}" (${policy.limit} requests per ${Math.ceil(policy.windowMs / 1000)} s) exceeded; retry in ${seconds} s`,
    'violated-policies': [policy.name],
    code
  }
}

export function storeUnavailable (code: string): Problem {
  return {
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'The rate-limit store cannot be reached and this service refuses requests it cannot count',
    code
  }
}
