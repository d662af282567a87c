import { Signer } from '@fastify/cookie'
import { LRUCache } from 'lru-cache'

export interface UnsignResult {
  valid: boolean
  renew: boolean
  value: string | null
}

/**
 * @fastify/cookie's Signer (HMAC-SHA256, timing-safe, the first secret signs,
 * all verify) with what it verified remembered: a cookie this instance has
 * verified is verified again by a lookup of the exact string, not an HMAC.
 * Only what verified with the newest secret is remembered (an older secret's
 * cookie is re-issued anyway), and the secrets never change for one signer,
 * so a hit is exactly what the HMAC would answer. A lookup tells nothing to
 * a forger: only a whole, valid cookie is ever a hit. Bounded (LRU) both ways.
 */
export class CachingSigner {
  readonly #signer: Signer
  readonly #signed: LRUCache<string, string>
  /** a verified cookie → its id */
  readonly #verified: LRUCache<string, string>

  constructor (secrets: string[], max: number) {
    this.#signer = new Signer(secrets, 'sha256')
    this.#signed = new LRUCache({ max })
    this.#verified = new LRUCache({ max })
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
    const value = this.#verified.get(input)
    if (value !== undefined) return { valid: true, renew: false, value }
    const result = this.#signer.unsign(input) as UnsignResult
    // renew: verified by an older secret, so `input` is not what sign() returns now
    if (result.valid && !result.renew && result.value !== null) {
      this.#signed.set(result.value, input)
      this.#verified.set(input, result.value)
    }
    return result
  }
}
