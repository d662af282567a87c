import { Redis } from 'ioredis'
import { redisUrl } from './env.js'
import { uniqueId } from './ids.js'
import type { TestContext } from './teardown.js'

export interface IsolatedRedis {
  /** every key this test writes should start with it, e.g. `${prefix}session:...` */
  prefix: string
  url: string
  /** a client that is disconnected at teardown */
  client (): Redis
}

/** Calls `fn` with each batch of keys matching `pattern`, by SCAN, so a large keyspace never blocks Redis. */
async function eachBatch (client: Redis, pattern: string, fn: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = next
    if (keys.length > 0) await fn(keys)
  } while (cursor !== '0')
}

/** Deletes every key matching `pattern`, scanning so a large keyspace never blocks Redis. */
export async function deleteKeys (client: Redis, pattern: string): Promise<number> {
  let deleted = 0
  await eachBatch(client, pattern, async (keys) => { deleted += await client.unlink(...keys) })
  return deleted
}

/**
 * Every key matching `pattern` on each of `clients` (one server, or every
 * node of a cluster: SCAN walks one node's keyspace), by SCAN. A key SCAN
 * returns twice (it may, while the keyspace is rehashed) is listed once.
 */
export async function scanKeys (clients: Redis | Redis[], pattern: string): Promise<string[]> {
  const found = new Set<string>()
  for (const client of Array.isArray(clients) ? clients : [clients]) {
    await eachBatch(client, pattern, async (keys) => { for (const k of keys) found.add(k) })
  }
  return [...found]
}

/**
 * A key prefix unique to this test on the shared Redis; every key under it is
 * removed at teardown. Use it as the plugin's key prefix so parallel test
 * files never see each other's data.
 */
export async function isolatedRedis (t: TestContext, url = redisUrl()): Promise<IsolatedRedis> {
  const prefix = `${uniqueId('t')}:`
  const clients: Redis[] = []
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await admin.connect()
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())))
    try {
      await deleteKeys(admin, `${prefix}*`)
    } finally {
      admin.disconnect()
    }
  })
  return {
    prefix,
    url,
    client () {
      const c = new Redis(url, { maxRetriesPerRequest: 1 })
      clients.push(c)
      return c
    }
  }
}
