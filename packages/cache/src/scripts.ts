import { createHash } from 'node:crypto'
import type { RedisClient } from '@headroom/core'

/** Runs a Lua script by SHA, loading it on NOSCRIPT (a restarted Redis forgets scripts). */
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

/**
 * Stores an entry written by a factory unless the key or one of its tags was
 * invalidated since the read that missed (their generation counters moved),
 * or a newer lease holder owns the key: a slow factory never writes back
 * data older than an invalidation. Releases the caller's lease and wakes
 * waiting instances.
 * KEYS: entry, gen, lease, tagSet x n, tagGen x n
 * ARGV: payload, px, expectedGen, fence, n, expectedTagGen x n, channel, leaseMessage
 */
export const STORE = new Script(`
local n = tonumber(ARGV[5])
local ok = 1
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[3] then ok = 0 end
for i = 1, n do
  if ok == 1 and (redis.call('GET', KEYS[3 + n + i]) or '') ~= ARGV[5 + i] then ok = 0 end
end
local holder = redis.call('GET', KEYS[3])
if ok == 1 and ARGV[4] ~= '' and holder and holder ~= ARGV[4] then ok = 0 end
if ok == 1 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local px = tonumber(ARGV[2])
  for i = 1, n do
    redis.call('SADD', KEYS[3 + i], KEYS[1])
    if redis.call('PTTL', KEYS[3 + i]) < px then redis.call('PEXPIRE', KEYS[3 + i], px) end
  end
end
if ARGV[4] ~= '' then
  if holder == ARGV[4] then redis.call('DEL', KEYS[3]) end
  redis.call('PUBLISH', ARGV[6 + n], ARGV[7 + n])
end
return ok
`)

/**
 * An explicit write: stores unconditionally, moves the key's generation (so
 * in-flight factories elsewhere do not overwrite it) and tells every
 * instance to drop the key from L1.
 * KEYS: entry, gen, tagSet x n   ARGV: payload, px, genTtl, channel, message
 */
export const SET = new Script(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local px = tonumber(ARGV[2])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < px then redis.call('PEXPIRE', KEYS[i], px) end
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)

/** KEYS: entry, gen pairs   ARGV: genTtl, channel, message */
export const DELETE = new Script(`
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

/** KEYS: tagSet, tagGen pairs   ARGV: genTtl, channel, message */
export const INVALIDATE_TAGS = new Script(`
for i = 1, #KEYS, 2 do
  local members = redis.call('SMEMBERS', KEYS[i])
  for j = 1, #members, 500 do
    redis.call('UNLINK', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

/**
 * Takes the key's lease with a fencing token from a counter that only goes
 * up, or reports the holder's remaining time.
 * KEYS: lease, fenceCounter   ARGV: px   -> { 1, token } | { 0, pttl }
 */
export const ACQUIRE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return { 0, redis.call('PTTL', KEYS[1]) }
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return { 1, token }
`)
