import type { PolicyOptions, RateLimitHandle, Usage } from '@headroom/ratelimit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { HashingBusy, LoginThrottled, SignupThrottled } from './errors.js'
import type { HashGate } from './passwords.js'

/** The failure counters, by @headroom/ratelimit policy name. */
export const POLICY = {
  /** failures per address (IPv6: per /64) across every email */
  address: 'login-failures-address',
  /** failures per account across every address */
  account: 'login-failures-account',
  /** failures per (address, account): cleared by a successful login */
  pair: 'login-failures-pair',
  /** (address, account) pairs that have logged in: exempt from the account counter */
  known: 'login-known-address',
  /** signups per address (IPv6: per /64), successful or not */
  signup: 'signups-address'
} as const

export interface LoginLimits {
  /** the window of every failure counter and of the signup counter, ms */
  windowMs: number
  accountFailures: number
  addressFailures: number
  pairFailures: number
  signups: number
  /** how long a successful login keeps its address known to the account, ms */
  knownMs: number
}

/** The policies `LoginGuard` counts with, for @headroom/ratelimit's `policies` option. */
export function loginPolicies (limits: LoginLimits): Record<string, PolicyOptions> {
  const failures = (limit: number): PolicyOptions => ({ limit, window: limits.windowMs })
  return {
    [POLICY.address]: failures(limits.addressFailures),
    [POLICY.account]: failures(limits.accountFailures),
    [POLICY.pair]: failures(limits.pairFailures),
    [POLICY.known]: { limit: 1, window: limits.knownMs },
    [POLICY.signup]: failures(limits.signups)
  }
}

/** The account key: the email as the database compares it (case-insensitive), bounded. */
function accountOf (email: string): string {
  return email.trim().toLowerCase().slice(0, 254)
}

/** What a login attempt must report once the password is checked. */
export interface LoginAttempt {
  failed (): Promise<void>
  succeeded (): Promise<void>
}

/**
 * Credential-stuffing and guessing protection, in the way
 * rate-limiter-flexible's "login endpoint protection" does it: counters of
 * *failures* (read before the password is hashed, so a blocked attempt costs
 * no scrypt; charged after a failure; the per-(address, account) one cleared
 * by a success), on @headroom/ratelimit's shared sliding window.
 *
 * The per-account counter does not lock the owner out: it applies only to
 * addresses that have not logged into that account within `knownMs`. An
 * attacker elsewhere is refused once the account's failures reach the limit,
 * while the owner, from an address they have used, still logs in (and is
 * still bounded by the per-address and per-pair counters).
 */
export class LoginGuard {
  readonly #rl: RateLimitHandle
  readonly #gate: HashGate

  constructor (rl: RateLimitHandle, gate: HashGate) {
    this.#rl = rl
    this.#gate = gate
  }

  /**
   * Refuses (429, or 503 when the hashing bound is reached) before any hash;
   * otherwise runs `check` (the hash) inside the bound and returns its result
   * with the attempt to report.
   */
  async login<T> (request: FastifyRequest, reply: FastifyReply, email: string, check: () => Promise<T>): Promise<{ result: T, attempt: LoginAttempt }> {
    const rl = this.#rl
    const address = rl.address(request)
    const account = `a:${accountOf(email)}`
    const pair = `${address}|${account}`
    const [byAddress, byPair, known] = await Promise.all([
      rl.peek(POLICY.address, address), rl.peek(POLICY.pair, pair), rl.peek(POLICY.known, pair)
    ])
    refuse(reply, byAddress, 'from this network')
    refuse(reply, byPair, 'for this account from this network')
    if (!known.blocked) refuse(reply, await rl.peek(POLICY.account, account), 'for this account')
    const result = await this.hash(reply, check)
    const attempt: LoginAttempt = {
      async failed () {
        await Promise.all([rl.charge(POLICY.address, address), rl.charge(POLICY.account, account), rl.charge(POLICY.pair, pair)])
      },
      async succeeded () {
        // only what an attacker cannot use: the account's and the address's
        // failures stay (a success of the attacker's own account must not
        // clear its address, the owner's success must not clear the account)
        // known for `knownMs` after the *last* success: a count of 1 ages out from
        // its first admission, so it is renewed (reset, then counted again)
        await Promise.all([rl.reset(POLICY.pair, pair), rl.reset(POLICY.known, pair).then(() => rl.charge(POLICY.known, pair))])
      }
    }
    return { result, attempt }
  }

  /** Signups per address (/64), counted before the hash; then the hash inside the bound. */
  async signup<T> (request: FastifyRequest, reply: FastifyReply, hash: () => Promise<T>): Promise<T> {
    const usage = await this.#rl.charge(POLICY.signup, this.#rl.address(request))
    if (usage.counted === 0) {
      reply.header('retry-after', usage.retryAfterS)
      throw new SignupThrottled(usage.retryAfterS)
    }
    return this.hash(reply, hash)
  }

  /** Runs `hash` inside the per-instance bound, or answers 503 + Retry-After at once. */
  async hash<T> (reply: FastifyReply, hash: () => Promise<T>): Promise<T> {
    const gate = this.#gate
    let ran = false
    const result = await gate.run(async () => { ran = true; return hash() })
    if (!ran) {
      reply.header('retry-after', 1)
      throw new HashingBusy()
    }
    return result as T
  }
}

function refuse (reply: FastifyReply, usage: Usage, what: string): void {
  if (!usage.blocked) return
  reply.header('retry-after', usage.retryAfterS)
  throw new LoginThrottled(what, usage.retryAfterS)
}
