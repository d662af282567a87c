import { randomBytes } from 'node:crypto'
import { servesSlots, type RedisClient } from '@headroom/core'

/** The whole client: a standalone Redis, or a Cluster client with no slot map (not connected). */
export const WHOLE = '*'

const SLOTS = 16384

/** CRC16/XMODEM of the key's bytes: Redis Cluster's key hash. */
function crc16 (bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** The hash slot of a key, hash tags included (`{...}`, the first non-empty one), as Redis computes it. */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) key = key.slice(open + 1, close)
  }
  return crc16(Buffer.from(key)) % SLOTS
}

interface Signal { promise: Promise<never>, reject: (err: Error) => void }

function newSignal (): Signal {
  let reject: (err: Error) => void = () => {}
  const promise = new Promise<never>((_resolve, _reject) => { reject = _reject })
  promise.catch(() => {})
  return { promise, reject }
}

interface Down {
  /** when the probe may try this node again; the delay doubles up to the cap */
  nextProbe: number
  delay: number
}

type ClusterLike = RedisClient & { isCluster?: boolean, slots?: Array<string[] | undefined> }

/**
 * Which Redis nodes the store cannot use, and so which sessions live in
 * memory. On a standalone Redis there is one node, the whole client. On a
 * Cluster a node is a master (`host:port`): only the sessions whose slot it
 * serves in the client's slot map fall back, the others keep using Redis.
 * A node is up again when a command to one of its slots succeeds (it came
 * back, or its slots moved and Redis redirected us), or when the client's
 * slot map no longer gives it any slot (a replica was promoted).
 */
export class Outages {
  readonly #client: ClusterLike
  readonly #cluster: boolean
  readonly #down = new Map<string, Down>()
  /** per node: rejected when the node goes down, so calls in flight to it are abandoned at once */
  readonly #signals = new Map<string, Signal>()
  readonly #probeMs: number
  readonly #maxProbeMs: number

  constructor (client: RedisClient, probeMs: number, maxProbeMs: number) {
    this.#client = client as ClusterLike
    this.#cluster = this.#client.isCluster === true
    this.#probeMs = probeMs
    this.#maxProbeMs = Math.max(probeMs, maxProbeMs)
  }

  get cluster (): boolean {
    return this.#cluster
  }

  /** The node a key's commands go to: its slot's master in the client's slot map (the whole client on a standalone Redis). */
  nodeOf (key: string): string {
    if (!this.#cluster) return WHOLE
    return this.#client.slots?.[keySlot(key)]?.[0] ?? WHOLE
  }

  get anyDown (): boolean {
    return this.#down.size > 0
  }

  get downNodes (): string[] {
    return [...this.#down.keys()]
  }

  isDown (key: string): boolean {
    if (this.#down.size === 0) return false
    return this.#down.has(WHOLE) || this.#down.has(this.nodeOf(key))
  }

  /** Rejects when `node` (or the whole client) goes down. */
  lost (node: string): Promise<never> {
    const sig = this.#signalOf(node)
    if (node === WHOLE) return sig.promise
    return Promise.race([sig.promise, this.#signalOf(WHOLE).promise])
  }

  #signalOf (node: string): Signal {
    let sig = this.#signals.get(node)
    if (!sig) {
      sig = newSignal()
      this.#signals.set(node, sig)
    }
    return sig
  }

  /** Returns true if the node was up until now. */
  markDown (node: string, err: Error): boolean {
    if (this.#down.has(node)) return false
    this.#down.set(node, { nextProbe: Date.now() + this.#probeMs, delay: this.#probeMs })
    const sig = this.#signals.get(node)
    this.#signals.delete(node)
    sig?.reject(err)
    return true
  }

  markUp (node: string): void {
    this.#down.delete(node)
  }

  /** a probe of `node` failed: wait twice as long before the next one (up to the cap) */
  backOff (node: string): void {
    const d = this.#down.get(node)
    if (!d) return
    d.delay = Math.min(d.delay * 2, this.#maxProbeMs)
    d.nextProbe = Date.now() + d.delay
  }

  /** down nodes due for a probe now */
  due (): string[] {
    const now = Date.now()
    return [...this.#down].filter(([, d]) => d.nextProbe <= now).map(([node]) => node)
  }

  /** Whether the client's slot map gives `node` any slot (always true on a standalone Redis or without a map). */
  servesSlots (node: string): boolean {
    return !this.#cluster || node === WHOLE || servesSlots(this.#client as RedisClient, node)
  }

  /** A key (`<prefix>probe:{n}`, never written) whose slot `node` serves in the client's slot map, to probe that very node. */
  probeKey (node: string, prefix: string): string | null {
    const slots = this.#client.slots
    if (!this.#cluster || node === WHOLE || !Array.isArray(slots)) return null
    // a third of the slots each on a 3-master cluster: a handful of tries
    for (let n = 0; n < 4096; n++) {
      const key = `${prefix}probe:{${n}}`
      if (slots[keySlot(key)]?.[0] === node) return key
    }
    return null
  }

  /**
   * A new session id (24 random bytes, base64url, as @fastify/session makes
   * them) whose slot is served by a node that is up, so a session created
   * during a master's failover goes to Redis, where every instance sees it.
   */
  newId (isDown: (id: string) => boolean): string {
    let id = randomId()
    for (let i = 0; i < 16 && this.#down.size > 0 && isDown(id); i++) id = randomId()
    return id
  }
}

const POOL = 24 * 128
let pool = randomBytes(POOL)
let at = 0

/** 24 random bytes in base64url, from a pool refilled 128 ids at a time */
export function randomId (): string {
  if (at + 24 > POOL) {
    pool = randomBytes(POOL)
    at = 0
  }
  const id = pool.toString('base64url', at, at + 24)
  at += 24
  return id
}
