import { raceTimeout, type HealthCheckResult } from '@headroom/core/contracts'
import { describe } from './classify.js'
import { parseLsn } from './lsn.js'
import type { ReplicaStats } from './metrics.js'
import { Target, type TargetContext } from './target.js'
import type pg from 'pg'

// replay at or past receive means the replica has applied everything it was sent: no
// lag, however old its last replayed transaction (an idle primary sends nothing new;
// after a restart the receive position restarts at a segment boundary, behind replay)
const CHECK_SQL = `SELECT pg_is_in_recovery() AS standby,
  pg_last_wal_replay_lsn()::text AS lsn,
  CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
       ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0) END::float8 AS lag_ms`

export const REPLAY_LSN_SQL = 'SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS lsn'

/**
 * A replica: its pool, and whether it takes reads. It is ejected when a
 * check or a read fails with a connection error, or when its lag passes
 * `maxReplicaLagMs`, and re-admitted after `replicaReadmitAfter` consecutive
 * passing checks.
 */
export class Replica implements ReplicaStats {
  readonly target: Target
  up = false
  lagMs: number | null = null
  /** the highest replay LSN seen; null until known */
  lsn: bigint | null = null
  /** false when the server is not in recovery (it is a primary, so always fresh) */
  standby = true
  #passes: number
  #reason = 'not checked yet'
  #checking = false

  readonly index: number
  readonly #ctx: TargetContext

  constructor (index: number, config: pg.ClientConfig, ctx: TargetContext) {
    this.index = index
    this.#ctx = ctx
    const o = ctx.options
    this.target = new Target(`replica:${index}`, 'replica', config, { min: o.replicaMin, max: o.replicaMax }, ctx)
    // the first passing check admits a replica; after an ejection it takes replicaReadmitAfter of them
    this.#passes = o.replicaReadmitAfter - 1
  }

  get label (): string {
    return this.target.label
  }

  replicaState (): { up: boolean, lagMs: number | null } {
    return { up: this.up, lagMs: this.lagMs }
  }

  /** true when a read that needs `minLsn` can run here without asking */
  freshFor (minLsn: bigint | null): boolean {
    return minLsn === null || !this.standby || (this.lsn !== null && this.lsn >= minLsn)
  }

  observe (standby: boolean, lsnText: string | null): void {
    this.standby = standby
    const lsn = parseLsn(lsnText)
    if (lsn !== null && (this.lsn === null || lsn > this.lsn)) this.lsn = lsn
  }

  eject (reason: 'error' | 'lag', detail: string): void {
    this.#passes = 0
    this.#reason = detail
    if (!this.up) return
    this.up = false
    this.#ctx.metrics.ejections.inc({ pool: this.label, reason })
    this.#ctx.log.warn({ pool: this.label, reason: detail }, 'PostgreSQL replica ejected: reads go to the other replicas or the primary')
  }

  #pass (): void {
    this.#passes++
    if (!this.up && this.#passes >= this.#ctx.options.replicaReadmitAfter) {
      this.up = true
      this.#ctx.log.info({ pool: this.label, lagMs: this.lagMs }, 'PostgreSQL replica admitted: it takes reads')
    }
  }

  /**
   * One health check. `primaryLsn` is the primary's WAL position read just
   * before: a replica that has replayed up to it is not lagging at all, even
   * while its WAL receiver is still reconnecting (when the SQL estimate,
   * based on the age of the last replayed transaction, would say it is).
   */
  async check (primaryLsn: bigint | null = null): Promise<void> {
    if (this.#checking) return
    this.#checking = true
    const o = this.#ctx.options
    try {
      const check = this.target.use('health check', (c) => c.query<{ standby: boolean, lsn: string | null, lag_ms: number }>(CHECK_SQL))
      const { rows } = await raceTimeout(check, o.replicaCheckTimeoutMs, () => {
        throw new Error(`health check took longer than replicaCheckTimeoutMs (${o.replicaCheckTimeoutMs} ms)`)
      })
      const row = rows[0]!
      this.observe(row.standby, row.lsn)
      const replayed = parseLsn(row.lsn)
      this.lagMs = primaryLsn !== null && replayed !== null && replayed >= primaryLsn ? 0 : row.lag_ms
      if (this.lagMs > o.maxReplicaLagMs) this.eject('lag', `lagging ${Math.round(this.lagMs)} ms, more than maxReplicaLagMs (${o.maxReplicaLagMs} ms)`)
      else this.#pass()
    } catch (err) {
      this.lagMs = null
      this.eject('error', describe(err))
    } finally {
      this.#checking = false
    }
  }

  async health (): Promise<HealthCheckResult> {
    if (this.up) return { status: 'pass', observedValue: Math.round(this.lagMs ?? 0), observedUnit: 'ms' }
    return { status: 'warn', output: `ejected, reads go elsewhere: ${this.#reason}` }
  }
}
