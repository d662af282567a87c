import type { RedisClient } from '@headroom/core'

interface Read { key: string, resolve: (hash: Record<string, string>) => void, reject: (err: Error) => void }

/**
 * HGETALL, batched: the reads of one event-loop turn go out as one pipeline
 * (one write to the socket instead of one per request). Standalone Redis
 * only: a Cluster's pipelines must stay within one slot.
 */
export class BatchedReads {
  readonly #client: RedisClient
  #reads: Read[] | null = null

  constructor (client: RedisClient) {
    this.#client = client
  }

  hgetall (key: string): Promise<Record<string, string>> {
    return new Promise((resolve, reject) => {
      if (this.#reads === null) {
        this.#reads = []
        setImmediate(this.#flush)
      }
      this.#reads.push({ key, resolve, reject })
    })
  }

  readonly #flush = (): void => {
    const reads = this.#reads ?? []
    this.#reads = null
    if (reads.length === 1) {
      const only = reads[0] as Read
      this.#client.hgetall(only.key).then(only.resolve, only.reject)
      return
    }
    const pipeline = this.#client.pipeline()
    for (const r of reads) pipeline.hgetall(r.key)
    pipeline.exec().then((results) => {
      reads.forEach((r, i) => {
        const [err, hash] = results?.[i] ?? [new Error('no reply'), null]
        if (err) r.reject(err)
        else r.resolve(hash as Record<string, string>)
      })
    }, (err: Error) => { for (const r of reads) r.reject(err) })
  }
}
