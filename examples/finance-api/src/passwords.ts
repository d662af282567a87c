import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'

/**
 * N=2^15 (32 MiB, about 60 ms of one core here): memory-hard, yet a login
 * storm does not starve the libuv pool. OWASP suggests 2^17; raise it here and
 * old hashes still verify, because each hash carries its parameters.
 */
export const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 64 } as const

function scrypt (password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFKC'), salt, keylen, options, (err, key) => err ? reject(err) : resolve(key))
  })
}

/** `scrypt$N$r$p$salt$hash` (base64url): the parameters travel with the hash so they can be raised later. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const { N, r, p, keylen } = SCRYPT
  const key = await scrypt(password, salt, keylen, { N, r, p, maxmem: 256 * N * r })
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [algo, n, r, p, salt, hash] = stored.split('$')
  if (algo !== 'scrypt' || !n || !r || !p || !salt || !hash) return false
  const expected = Buffer.from(hash, 'base64url')
  const N = Number(n)
  const key = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, { N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) })
  return timingSafeEqual(key, expected)
}

let dummy: Promise<string> | undefined
/**
 * A hash to verify against when the email is unknown, so "no such user" and
 * "wrong password" take the same time and the login cannot enumerate users.
 */
export function dummyHash (): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'))
  return dummy
}

/**
 * At most `max` password hashes (scrypt, on libuv's thread pool) at once in
 * this process. A hash that finds no free slot is refused at once rather than
 * queued: a login storm then costs a bounded amount of CPU and memory (each
 * scrypt holds 32 MiB) and the excess is answered 503 + Retry-After, never
 * left to pile up behind the thread pool and time out. `inFlight` and
 * `refused` are for tests and logs.
 */
export class HashGate {
  readonly max: number
  #inFlight = 0
  #refused = 0

  constructor (max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`HashGate: max must be an integer >= 1, got ${max}`)
    this.max = max
  }

  get inFlight (): number {
    return this.#inFlight
  }

  get refused (): number {
    return this.#refused
  }

  /** Runs `hash` if a slot is free; undefined (nothing run) when `max` are already running. */
  async run<T> (hash: () => Promise<T>): Promise<T | undefined> {
    if (this.#inFlight >= this.max) {
      this.#refused++
      return undefined
    }
    this.#inFlight++
    try {
      return await hash()
    } finally {
      this.#inFlight--
    }
  }
}
