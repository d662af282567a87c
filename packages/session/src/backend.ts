import { withTimeout, type RedisClient } from '@headroom/core'
import type { FastifyBaseLogger } from 'fastify'
import { FIELD_PREFIX, userOf, type Diff } from './codec.js'
import type { SessionMetrics } from './metrics.js'
import { Outages, WHOLE } from './outages.js'
import { BatchedReads } from './reads.js'
import { ReplicaReader } from './replicas.js'
import { SAVE_SCRIPT, TOUCH_SCRIPT } from './scripts.js'

interface ScriptedClient {
  headroomSessionSave (key: string, ...args: Array<string | number>): Promise<number>
  headroomSessionTouch (key: string, ttl: number, expiresAt: number): Promise<number>
}

/** Where a change is announced: the hot-session bus's channel and message for some session ids. */
export interface Publisher {
  channel: string
  message (ids: string[]): string
}

type Multi = ReturnType<RedisClient['multi']>

/** the replies of a MULTI, its commands' errors thrown (the first one) */
function replies (result: Array<[Error | null, unknown]> | null): unknown[] {
  if (result === null) throw Object.assign(new Error('transaction aborted'), { code: 'EXECABORT' })
  for (const [err] of result) if (err) throw err
  return result.map(([, value]) => value)
}

export interface BackendOptions {
  keyPrefix: string
  maxAge: number
  commandTimeoutMs: number
  probeIntervalMs: number
  maxProbeIntervalMs: number
  log: FastifyBaseLogger
  metrics: SessionMetrics
  /** a node went down: the store starts probing */
  onDown: () => void
}

const nodeDown = (node: string) => Object.assign(new Error(`Redis node ${node} unavailable`), { code: 'NODE_DOWN' })
const connectionLost = () => Object.assign(new Error('connection lost'), { code: 'CONNECTION_LOST' })
export const codeOf = (err: Error): string => (err as { code?: string }).code ?? err.name

/**
 * The store's Redis side: each command bounded, routed to the node that
 * serves its key, and refused at once while that node is down (see Outages).
 */
export class RedisBackend {
  readonly client: RedisClient
  readonly outages: Outages
  readonly #o: BackendOptions
  readonly #reads: BatchedReads | null
  readonly #replicas: ReplicaReader | null
  readonly #lostEvent: string
  #closed = false
  /** set while hot sessions are on: every change publishes its session ids in the MULTI that makes it */
  publisher: Publisher | null = null

  constructor (client: RedisClient, options: BackendOptions) {
    this.client = client
    this.#o = options
    this.outages = new Outages(client, options.probeIntervalMs, options.maxProbeIntervalMs)
    this.#reads = this.outages.cluster ? null : new BatchedReads(client)
    this.#replicas = this.outages.cluster ? new ReplicaReader(client, options.commandTimeoutMs) : null
    const c = client as unknown as ScriptedClient & { defineCommand: RedisClient['defineCommand'] }
    // defined once per client: several plugin instances may share it
    if (typeof c.headroomSessionSave !== 'function') c.defineCommand('headroomSessionSave', { numberOfKeys: 1, lua: SAVE_SCRIPT })
    if (typeof c.headroomSessionTouch !== 'function') c.defineCommand('headroomSessionTouch', { numberOfKeys: 1, lua: TOUCH_SCRIPT })
    // A dropped connection takes its node offline at once, rather than after a command timeout per request
    // (a Cluster keeps retrying commands for a lost node until they time out).
    this.#lostEvent = this.outages.cluster ? '-node' : 'close'
    client.on(this.#lostEvent, this.#onConnectionLost)
  }

  readonly #onConnectionLost = (node?: { options?: { host?: string, port?: number } }): void => {
    if (!this.outages.cluster || node?.options === undefined) {
      this.failed(WHOLE, connectionLost())
      return
    }
    // A Cluster also drops connections to nodes that serve no slot, on a
    // healthy cluster: the replicas given as startup nodes once the slot map
    // is known, replicas on slot refreshes. Only a master's counts as lost.
    const name = `${node.options.host}:${node.options.port}`
    if (this.outages.servesSlots(name)) this.failed(name, connectionLost())
  }

  sessionKey (id: string): string {
    return `${this.#o.keyPrefix}sess:{${id}}`
  }

  userKey (userId: string): string {
    return `${this.#o.keyPrefix}user:{${userId}}`
  }

  isDown (id: string): boolean {
    return this.outages.isDown(this.sessionKey(id))
  }

  /**
   * Every Redis call, for the node that serves `key`: refused at once while
   * that node is down, bounded by the command timeout, and abandoned as soon
   * as another call has taken that node offline, so in an outage no request
   * waits longer than the first one that noticed it. A failure takes the node offline.
   */
  run<T> (key: string, fn: (client: RedisClient, timeoutMs: number) => Promise<T>, timeoutMs = this.#o.commandTimeoutMs, bounded = false): Promise<T> {
    const client = this.client
    const node = client.status === 'ready' ? this.outages.nodeOf(key) : WHOLE
    if (this.outages.isDown(key)) return Promise.reject(nodeDown(node))
    // `bounded`: fn applies the timeout itself, from when it writes the command
    const call = client.status === 'ready'
      ? (bounded ? fn(client, timeoutMs) : withTimeout(fn(client, timeoutMs), timeoutMs))
      : Promise.reject(Object.assign(new Error(`client is ${client.status}`), { code: 'NOT_READY' }))
    return Promise.race([call, this.outages.lost(node)]).catch((err: Error) => {
      this.failed(node, err)
      throw err
    })
  }

  /** `timeoutMs`: what is left of one command timeout, when the request already waited for something else */
  read (id: string, timeoutMs?: number): Promise<Record<string, string>> {
    const key = this.sessionKey(id)
    const reads = this.#reads
    if (reads === null) return this.run(key, (c) => c.hgetall(key), timeoutMs)
    // batched: the bound starts when the batch is written, a turn later (busy is not down)
    return this.run(key, (_c, ms) => reads.hgetall(key, ms), timeoutMs, true)
  }

  /** The session's hash on a replica of its slot (while its master is down), or null if no replica answers. */
  async readReplica (id: string, timeoutMs = this.#o.commandTimeoutMs): Promise<Record<string, string> | null> {
    const key = this.sessionKey(id)
    const master = this.outages.nodeOf(key)
    if (!this.#replicas || master === WHOLE) return null
    return this.#replicas.hgetall(master, key, timeoutMs)
  }

  /** what is left of one command timeout since `start` (at least `floor` ms): a read that failed over to a replica stays within about one timeout */
  remaining (start: number, floor = 50): number {
    return Math.max(floor, this.#o.commandTimeoutMs - (Date.now() - start))
  }

  async save (id: string, mode: 'n' | 'u' | 'r', { changed, removed }: Diff, expiresAt: number, userId: string | undefined, previousUser: string | undefined): Promise<void> {
    const ttl = expiresAt - Date.now()
    if (ttl <= 0) return
    const key = this.sessionKey(id)
    const args: Array<string | number> = [mode, ttl, expiresAt, removed.length]
    for (const name of removed) args.push(FIELD_PREFIX + name)
    for (const name in changed) args.push(FIELD_PREFIX + name, changed[name] as string)
    // the index first: a dangling index entry is pruned later, a missing one would escape log-out-everywhere
    if (userId !== undefined) {
      const userKey = this.userKey(userId)
      const index = this.run(userKey, (c) => c.multi().zadd(userKey, 'NX', String(Date.now()), id).pexpire(userKey, this.#o.maxAge).exec())
      // the same user as when the request started: the entry exists since the login, only its TTL is
      // extended, which need not delay the save (nor fail it while the index's node is down)
      if (userId === previousUser) index.catch(() => {})
      else await index
    }
    if (this.publisher === null) await this.run(key, (c) => (c as unknown as ScriptedClient).headroomSessionSave(key, ...args))
    else await this.run(key, async (c) => replies(await this.#publishing((c.multi() as unknown as ScriptedClient & Multi).headroomSessionSave(key, ...args) as unknown as Multi, id).exec()))
    // a stale entry in the previous user's index is pruned by list() if this fails
    if (previousUser !== undefined && previousUser !== userId) await this.run(this.userKey(previousUser), (c) => c.zrem(this.userKey(previousUser), id)).catch(() => {})
  }

  /** resolves whether the session existed */
  async destroy (id: string): Promise<boolean> {
    const key = this.sessionKey(id)
    const [raw, unlinked] = await this.run(key, async (c) => replies(await this.#publishing(c.multi().hget(key, FIELD_PREFIX + 'userId').unlink(key), id).exec()))
    const userId = typeof raw === 'string' ? userOf({ userId: raw }) : undefined
    if (userId !== undefined) await this.run(this.userKey(userId), (c) => c.zrem(this.userKey(userId), id))
    return unlinked === 1
  }

  /** deletes a session's hash only (log-out-everywhere prunes the index itself) */
  async unlink (id: string): Promise<void> {
    const key = this.sessionKey(id)
    if (this.publisher === null) await this.run(key, (c) => c.unlink(key))
    else await this.run(key, async (c) => replies(await this.#publishing(c.multi().unlink(key), id).exec()))
  }

  /**
   * Adds the PUBLISH of the change to its MULTI: the change and its
   * announcement happen together or not at all, and the caller's response
   * waits for both. On a Cluster, PUBLISH has no key (any slot's MULTI takes
   * it) and is broadcast to every node.
   */
  #publishing (multi: Multi, id: string): Multi {
    const p = this.publisher
    return p === null ? multi : multi.publish(p.channel, p.message([id]))
  }

  /** PEXPIRE and `@exp` of the session; the user's index is extended too, best effort (a later save or touch does it) */
  async touch (id: string, userId: string | undefined, expiresAt: number): Promise<void> {
    const key = this.sessionKey(id)
    await this.run(key, (c) => (c as unknown as ScriptedClient).headroomSessionTouch(key, this.#o.maxAge, expiresAt))
    // every session of a user expires by now + maxAge at the latest, so the index may too (not awaited, as in save)
    if (userId !== undefined) this.run(this.userKey(userId), (c) => c.pexpire(this.userKey(userId), this.#o.maxAge)).catch(() => {})
  }

  failed (node: string, err: Error): void {
    this.#o.metrics.redisErrors.inc()
    if (this.#closed || !this.outages.markDown(node, err)) return
    if (node !== WHOLE) this.#replicas?.discover(node)
    this.#o.metrics.fallbackActive.set(1)
    // the error's code only: messages of some Redis errors quote command arguments
    this.#o.log.warn({ code: codeOf(err), node }, node === WHOLE
      ? '@headroom/session: Redis unavailable, sessions fall back to memory on this instance'
      : '@headroom/session: a Redis Cluster node is unavailable, the sessions of its slots fall back to memory on this instance')
    this.#o.onDown()
  }

  /**
   * Probes the down nodes that are due: one whose slots moved elsewhere (a
   * replica was promoted) is up; any other is probed with a command to one of
   * its own slots (a PING on a standalone Redis), never a random node.
   */
  async probe (): Promise<void> {
    const { client, outages } = this
    let recovered = false
    await Promise.all(outages.due().map(async (node) => {
      if (client.status !== 'ready') return outages.backOff(node)
      if (node !== WHOLE && !outages.servesSlots(node)) {
        this.#up(node)
        recovered = true
        return
      }
      const probeKey = outages.probeKey(node, this.#o.keyPrefix)
      try {
        await withTimeout<unknown>(probeKey ? client.exists(probeKey) : client.ping(), this.#o.commandTimeoutMs)
        this.#up(node)
        recovered = true
      } catch {
        outages.backOff(node)
      }
    }))
    // a redirected probe moved one slot: have the client re-read the others
    if (recovered && outages.cluster) (client as { refreshSlotsCache?: () => void }).refreshSlotsCache?.()
  }

  #up (node: string): void {
    this.outages.markUp(node)
    this.#replicas?.forget(node)
  }

  /**
   * Waits (bounded) for the client to be ready, so the first requests do not
   * start on the fallback; a Redis still down after `waitMs` starts the store
   * in fallback mode, and the probe takes over.
   */
  async start (waitMs: number): Promise<void> {
    const client = this.client
    if (client.status === 'ready') return
    // a lazyConnect client would otherwise never connect: nothing is sent to a client that is not ready
    if (client.status === 'wait') client.connect().catch(() => {})
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        client.off('ready', done)
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      timer.unref()
      client.once('ready', done)
    })
    if ((client.status as string) !== 'ready') this.failed(WHOLE, Object.assign(new Error('not ready'), { code: `client ${client.status}` }))
  }

  close (): void {
    this.#closed = true
    this.client.off(this.#lostEvent, this.#onConnectionLost)
    this.#replicas?.close()
  }
}
