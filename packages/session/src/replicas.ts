import { withTimeout, type RedisClient } from '@headroom/core'
import type { Redis, RedisOptions } from 'ioredis'

interface ClusterLike {
  nodes (role: 'master' | 'slave' | 'all'): Redis[]
}

const LIVE = new Set(['ready', 'wait', 'connect', 'connecting'])
const nameOf = (r: Redis) => `${r.options.host}:${r.options.port}`

/**
 * Reads from the replicas of a Cluster master that is down. The client's
 * slot map cannot be trusted to name them (CLUSTER SLOTS lists replicas only
 * once the cluster's gossip has spread, and ioredis connects to them lazily),
 * so when a master goes down its replicas are looked up once in `CLUSTER
 * NODES` of a live master, and read over connections of this reader's own
 * (`READONLY`, the client's credentials and TLS), closed when the master is
 * back or the store closes.
 */
export class ReplicaReader {
  readonly #client: ClusterLike
  readonly #timeoutMs: number
  /** down master → its replicas' `host:port` */
  readonly #of = new Map<string, Promise<string[]>>()
  readonly #conns = new Map<string, Redis>()

  constructor (client: RedisClient, timeoutMs: number) {
    this.#client = client as unknown as ClusterLike
    this.#timeoutMs = timeoutMs
  }

  /** Looks up the replicas of `master`, which just went down (once per outage). */
  discover (master: string): void {
    if (this.#of.has(master)) return
    const found = this.#lookup(master).catch(() => [])
    this.#of.set(master, found)
    // nothing found (no live master answered): look again on the next read
    found.then((names) => { if (names.length === 0 && this.#of.get(master) === found) this.#of.delete(master) }, () => {})
  }

  async #lookup (master: string): Promise<string[]> {
    // a connection not used yet is lazy (`wait`): the command connects it
    const live = this.#client.nodes('master').find((n) => LIVE.has(n.status) && nameOf(n) !== master)
    if (!live) return []
    const text = String(await withTimeout(live.cluster('NODES'), this.#timeoutMs))
    const lines = text.split('\n').map((l) => l.trim().split(' ')).filter((f) => f.length >= 8)
    // `<id> <ip:port@cport[,hostname]> <flags> <master id|-> ...`
    const names = (f: string[]) => {
      const [addr = '', hostname] = (f[1] ?? '').split(',')
      const endpoint = addr.split('@')[0] ?? ''
      const port = endpoint.slice(endpoint.lastIndexOf(':') + 1)
      return hostname ? [endpoint, `${hostname}:${port}`] : [endpoint]
    }
    const id = lines.find((f) => names(f).includes(master))?.[0]
    if (!id) return []
    return lines.filter((f) => f[3] === id && !(f[2] ?? '').includes('fail')).map((f) => names(f)[0] as string)
  }

  /** The session hash from a replica of `master`, or null if none answers within the timeout. */
  async hgetall (master: string, key: string, timeoutMs = this.#timeoutMs): Promise<Record<string, string> | null> {
    const deadline = Date.now() + timeoutMs
    this.discover(master)
    const names = await withTimeout(this.#of.get(master) ?? Promise.resolve([]), timeoutMs).catch(() => [])
    const name = names[0]
    if (!name) return null
    try {
      return await withTimeout(this.#connection(name).hgetall(key), Math.max(1, deadline - Date.now()))
    } catch {
      return null
    }
  }

  #connection (name: string): Redis {
    const known = this.#conns.get(name)
    if (known && known.status !== 'end' && known.status !== 'close') return known
    const port = Number(name.slice(name.lastIndexOf(':') + 1))
    const host = name.slice(0, name.lastIndexOf(':'))
    // ioredis is an optional peer, imported for types only: a memory-only
    // store must load without it. So the connection is a duplicate of one of
    // the cluster's own node connections (a Redis, with the client's
    // credentials and TLS), pointed at the replica
    const node = this.#client.nodes('all')[0]
    if (!node) throw new Error('the cluster client knows no node')
    // (ioredis types duplicate() without its override argument)
    const conn = (node as unknown as { duplicate (override: RedisOptions): Redis }).duplicate({
      host,
      port,
      readOnly: true,
      lazyConnect: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      // the promotion ends its use: no reconnecting forever
      retryStrategy: (times) => times > 3 ? null : 100
    })
    conn.on('error', () => {})
    this.#conns.set(name, conn)
    return conn
  }

  /** `master` is back (or its slots moved): its replicas are no longer read. */
  forget (master: string): void {
    const found = this.#of.get(master)
    this.#of.delete(master)
    found?.then((names) => {
      for (const name of names) {
        this.#conns.get(name)?.disconnect()
        this.#conns.delete(name)
      }
    }, () => {})
  }

  close (): void {
    this.#of.clear()
    for (const conn of this.#conns.values()) conn.disconnect()
    this.#conns.clear()
  }
}
