import { createHash } from 'node:crypto'
import type { RedisClient } from '@headroom/core'

/** Runs a Lua script by SHA, loading it on NOSCRIPT (a restarted Redis, or a promoted replica, forgets scripts). */
export class Script {
  readonly sha: string
  constructor (readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  async run (client: RedisClient, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return client.eval(this.source, keys.length, ...keys, ...args)
    }
  }
}

// Every script touches the keys of ONE hash slot (l2.ts gives an entry's keys
// one hash tag, and a tag's keys another), so all of them run on a Redis
// Cluster. PUBLISH has no key: on a cluster it is broadcast to every node.

/**
 * Stores an entry written by a factory unless the key was invalidated since
 * the read that missed (its generation counter moved) or a newer lease
 * holder owns it: a slow factory never writes back data older than an
 * invalidation. Releases the caller's lease and wakes waiting instances.
 * An empty payload only releases the lease.
 * KEYS: entry, gen, lease   ARGV: payload, px, expectedGen, fence, channel, leaseMessage
 */
export const STORE = new Script(`
local ok = 0
if ARGV[1] ~= '' and (redis.call('GET', KEYS[2]) or '') == ARGV[3] then ok = 1 end
local holder = redis.call('GET', KEYS[3])
if ok == 1 and ARGV[4] ~= '' and holder and holder ~= ARGV[4] then ok = 0 end
if ok == 1 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if ARGV[4] ~= '' then
  if holder == ARGV[4] then redis.call('DEL', KEYS[3]) end
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
return ok
`)

/**
 * Adds an entry to a tag's member set, before the entry itself is written,
 * so a tag invalidation that runs in between finds it. With an expected
 * generation (factory results), only if the tag was not invalidated since
 * the read that missed.
 * KEYS: tagSet, tagGen   ARGV: member, px[, expectedTagGen]
 */
export const ENROL = new Script(`
if ARGV[3] and (redis.call('GET', KEYS[2]) or '') ~= ARGV[3] then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`)

/**
 * An explicit write: stores unconditionally, moves the key's generation (so
 * in-flight factories elsewhere do not overwrite it) and tells every
 * instance to drop the key from L1.
 * KEYS: entry, gen   ARGV: payload, px, genTtl, channel, message
 */
export const SET = new Script(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return 1
`)

/**
 * Deletes entries and moves their generations; publishes when given a message.
 * KEYS: entry, gen pairs (of one slot on a cluster)   ARGV: genTtl, channel, message
 */
export const DELETE = new Script(`
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 1
`)

/**
 * First half of a tag invalidation: moves the tag's generation (factories
 * that read the old one can no longer enrol, so cannot store) and returns
 * the members to delete. The set keeps them until they are deleted, so an
 * invalidation cut short is replayed in full.
 * KEYS: tagSet, tagGen   ARGV: genTtl
 */
export const BUMP_TAG = new Script(`
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return redis.call('SMEMBERS', KEYS[1])
`)

/**
 * Takes the key's lease with a token unique to this acquisition, or reports
 * the holder's remaining time.
 * KEYS: lease   ARGV: px, token   -> { 1, token } | { 0, pttl }
 */
export const ACQUIRE = new Script(`
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[1]) then return { 1, ARGV[2] } end
return { 0, redis.call('PTTL', KEYS[1]) }
`)
