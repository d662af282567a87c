import { randomBytes } from 'node:crypto'

/** A short random identifier that is safe in SQL identifiers and key names. */
export function uniqueId (prefix = 't'): string {
  return `${prefix}_${process.pid}_${randomBytes(5).toString('hex')}`
}
