import { withTimeout, type RedisClient } from '@headroom/core'

interface Read { key: string, timeoutMs: number, resolve: (hash: Record<string, string>) => void, reject: (err: Error) => void }

/**
 * HGETALL, batched: the reads of one event-loop turn go out as one pipeline
 * (one write to the socket instead of one per request). Standalone Redis
 * only: a Cluster's pipelines must stay within one slot. Each read is
 * bounded by its timeout from when the batch is written, not from when it
 * was queued: a loop blocked in between is not Redis's delay.
 */
export class BatchedReads {
  readonly #client: RedisClient
  #reads: Read[] | null = null

  constructor (client: RedisClient) {
    this.#client = client
  }

  hgetall (key: string, timeoutMs: number): Promise<Record<string, string>> {
    return new Promise((resolve, reject) => {
      if (this.#reads === null) {
        this.#reads = []
        setImmediate(this.#flush)
      }
      this.#reads.push({ key, timeoutMs, resolve, reject })
    })
  }

  readonly #flush = (): void => {
    const reads = this.#reads ?? []
    this.#reads = null
    if (reads.length === 1) {
      const only = reads[0] as Read
      withTimeout(this.#client.hgetall(only.key), only.timeoutMs).then(only.resolve, only.reject)
      return
    }
    const pipeline = this.#client.pipeline()
    for (const r of reads) pipeline.hgetall(r.key)
    const sent = pipeline.exec()
    reads.forEach((r, i) => {
      withTimeout(sent, r.timeoutMs).then((results) => {
        const [err, hash] = results?.[i] ?? [new Error('no reply'), null]
        if (err) r.reject(err)
        else r.resolve(hash as Record<string, string>)
      }, r.reject)
    })
  }
}
