/**
 * Saves changed fields of one session hash. One key, so it runs on a Cluster.
 * ARGV: mode, ttl ms, expiresAt ms, number of fields to delete, those fields,
 * then field/value pairs. Modes: `n` new id, `u` update (skipped when the key
 * is gone: a session logged out meanwhile is not resurrected by a late save),
 * `r` replace (write-back after an outage).
 */
export const SAVE_SCRIPT = `
local key = KEYS[1]
local mode = ARGV[1]
if mode == 'u' and redis.call('EXISTS', key) == 0 then return 0 end
if mode == 'r' then redis.call('DEL', key) end
local n = tonumber(ARGV[4])
if n > 0 then redis.call('HDEL', key, unpack(ARGV, 5, 4 + n)) end
redis.call('HSET', key, '@exp', ARGV[3], unpack(ARGV, 5 + n))
redis.call('PEXPIRE', key, ARGV[2])
return 1
`

/** Extends a session's TTL and records the new expiry; never recreates a session that is gone. */
export const TOUCH_SCRIPT = `
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], '@exp', ARGV[2])
  return 1
end
return 0
`
