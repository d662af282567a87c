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

/** Deletes every key matching `pattern`, scanning so a large keyspace never blocks Redis. */
export async function deleteKeys (client: Redis, pattern: string): Promise<number> {
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = next
    if (keys.length > 0) deleted += await client.unlink(...keys)
  } while (cursor !== '0')
  return deleted
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
