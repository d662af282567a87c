import { Signer } from '@fastify/cookie'
import { LRUCache } from 'lru-cache'

export interface UnsignResult {
  valid: boolean
  renew: boolean
  value: string | null
}

/**
 * @fastify/cookie's Signer (HMAC-SHA256, timing-safe, the first secret signs,
 * all verify) with the signatures it computed or verified remembered: each
 * request unsigns the cookie and @fastify/session then signs the same id
 * again; the second HMAC is a lookup. Bounded; an entry only ever maps an id
 * to the exact string the newest secret produces for it.
 */
export class CachingSigner {
  readonly #signer: Signer
  readonly #signed: LRUCache<string, string>

  constructor (secrets: string[], max: number) {
    this.#signer = new Signer(secrets, 'sha256')
    this.#signed = new LRUCache({ max })
  }

  sign (value: string): string {
    let signed = this.#signed.get(value)
    if (signed === undefined) {
      signed = this.#signer.sign(value)
      this.#signed.set(value, signed)
    }
    return signed
  }

  unsign (input: string): UnsignResult {
    const result = this.#signer.unsign(input) as UnsignResult
    // renew: verified by an older secret, so `input` is not what sign() returns now
    if (result.valid && !result.renew && result.value !== null) this.#signed.set(result.value, input)
    return result
  }
}
