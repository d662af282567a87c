import type { FastifyBaseLogger } from 'fastify'
import type { Bus } from './bus.js'
import type { Entry } from './entry.js'
import { Fills } from './fills.js'
import type { Target } from './singleflight.js'
import type { L1 } from './l1.js'
import type { L2 } from './l2.js'
import type { CacheMetrics } from './metrics.js'
import { ReplayQueue } from './replay.js'

export interface InvalidationDeps {
  l1: L1
  l2: L2 | null
  bus: Bus | null
  metrics: CacheMetrics
  now: () => number
  log: FastifyBaseLogger
  replayLimit: number
}

export function errMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * The invalidation side of the engine: L1 entries dropped, the reads still
 * in flight for them marked (see Fill), Redis told (and the other instances,
 * over the bus), and what did not reach Redis or enough replicas queued for
 * replay, with reads meanwhile refusing the L2 entries it removes.
 */
export class Invalidations {
  /** every read that may still write L1 (see Fill): what an invalidation marks */
  readonly fills = new Fills()
  readonly #d: InvalidationDeps
  /** invalidations that could not reach Redis, replayed when it is back */
  readonly #replay: ReplayQueue
  #seq = 0

  constructor (deps: InvalidationDeps) {
    this.#d = deps
    const { l2, bus } = deps
    this.#replay = new ReplayQueue(deps.replayLimit, {
      ready: () => l2 !== null && l2.guard.breaker.allowsCall && l2.guard.client.status === 'ready',
      // the replay reached Redis: drop from L1 what was read meanwhile
      deleteKeys: async (keys) => {
        await l2!.delete(keys, bus?.message({ k: keys }) ?? '')
        this.local(keys, [])
      },
      invalidateTags: async (tags) => {
        await l2!.invalidateTags(tags, bus?.message({ t: tags }) ?? '')
        this.local([], tags)
      }
    }, deps.log)
  }

  /** bumped by every invalidation: a read that saw it change while in Redis does not fill L1 */
  get seq (): number {
    return this.#seq
  }

  get pendingReplay (): number {
    return this.#replay.size
  }

  delete (keys: string[]): Promise<void> {
    const { l2, bus } = this.#d
    return this.#apply(keys, [], 'delete', 'delete', () => l2!.delete(keys, bus?.message({ k: keys }) ?? ''))
  }

  async invalidateTags (tags: string[]): Promise<void> {
    if (tags.length === 0) return
    const { l2, bus } = this.#d
    return this.#apply([], tags, 'invalidate', 'tag invalidation', () => l2!.invalidateTags(tags, bus?.message({ t: tags }) ?? ''))
  }

  /** Here at once, then in Redis (bounded by the guard); what does not reach Redis is replayed. */
  async #apply (keys: string[], tags: string[], kind: 'delete' | 'invalidate', what: string, write: () => Promise<void>): Promise<void> {
    this.local(keys, tags)
    const l2 = this.#d.l2
    if (!l2) return
    try {
      await write()
      // a read that reached Redis before the invalidation did (a NOSCRIPT reload, a redirect) may have filled L1 meanwhile
      this.local(keys, tags)
      this.checkReplicated(keys, tags, await l2.replicated())
    } catch (err) {
      this.#d.metrics.l2Error(kind)
      this.queue(keys, tags)
      this.#d.log.warn({ err: errMessage(err) }, `@headroom/cache: ${what} did not reach Redis; queued for replay`)
    }
  }

  /** From another instance, over the bus. */
  remote (keys: string[], tags: string[]): void {
    this.#d.metrics.invalidationsReceived.inc()
    this.local(keys, tags)
  }

  /** The bus was down: messages may have been lost, so L1 and every read in flight are dropped. */
  resync (): void {
    this.#d.log.info('@headroom/cache: invalidation bus back; L1 cleared since messages may have been lost')
    this.#seq++
    this.#d.l1.clear()
    this.fills.poisonAll()
  }

  /** Drops `keys` and `tags` from L1 and marks the reads in flight for them. */
  local (keys: string[], tags: string[]): void {
    for (const key of keys) this.#d.l1.delete(key)
    this.poison(keys)
    if (tags.length > 0) {
      this.#d.l1.deleteTags(tags)
      this.fills.poisonTags(tags)
    }
  }

  /** In-flight reads of `keys` neither fill L1 nor serve reads that start from now on. */
  poison (keys: string[]): void {
    this.#seq++
    this.fills.poisonKeys(keys)
  }

  /** Queues an invalidation for replay, remembering when it happened. */
  queue (keys: string[], tags: string[]): void {
    this.#replay.add(keys, tags, this.#d.now())
  }

  /** An L2 entry that an invalidation still waiting for replay removes (created before it). */
  invalidatedSince (t: Target, entry: Entry): boolean {
    return this.#replay.invalidatedSince(t.key, t.tags, entry.createdAt)
  }

  /** Not on enough replicas: a failover could lose it, so it is applied again later (deletes are idempotent). */
  checkReplicated (keys: string[], tags: string[], replicated: boolean): void {
    if (replicated) return
    this.#d.metrics.l2Error('replicate')
    this.queue(keys, tags)
    this.#d.log.warn('@headroom/cache: an invalidation reached fewer replicas than waitForReplicas; queued for replay')
  }

  stop (): void {
    this.#replay.stop()
  }
}
