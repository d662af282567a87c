import { InvalidToken } from './errors.js'

/**
 * A consistency token is the text form of a PostgreSQL WAL position (LSN),
 * e.g. `0/16B3748`: the primary's WAL insert position right after a write.
 * A replica whose `pg_last_wal_replay_lsn()` has reached it has replayed
 * that write, so a read there sees it.
 */
export type ConsistencyToken = string

/** the WAL position after a write, read on the connection that wrote */
export const LSN_SQL = 'SELECT pg_current_wal_insert_lsn()::text AS lsn'

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/

/** the LSN as a bigint, or null when `text` is not an LSN */
export function parseLsn (text: unknown): bigint | null {
  if (typeof text !== 'string') return null
  const m = LSN.exec(text)
  if (m === null) return null
  return (BigInt(`0x${m[1]!}`) << 32n) | BigInt(`0x${m[2]!}`)
}

/** like parseLsn, but a token that is not an LSN is a 400 */
export function parseToken (token: string): bigint {
  const lsn = parseLsn(token)
  if (lsn === null) throw new InvalidToken(String(token).slice(0, 40))
  return lsn
}

export function formatLsn (lsn: bigint): ConsistencyToken {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xFFFFFFFFn).toString(16).toUpperCase()}`
}
