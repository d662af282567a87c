import pg from 'pg'
import type { NormalizedOptions } from './options.js'

export interface PoolHooks {
  /** a connection was lost (counted once, however many times pg reports it) */
  lost: (err: Error) => void
  /** the pool is closing: no more top-ups */
  closing: () => boolean
}

/**
 * The raw pg.Pool of one server, as the gate in front of it (Target) needs
 * it: no queue and no acquire timeout of pg-pool's own, a connect timeout on
 * each new client, server-side statement timeouts, a jittered lifetime per
 * connection, and kept topped up to `min`.
 */
export function openPool (config: pg.ClientConfig, size: { min: number, max: number }, o: NormalizedOptions, hooks: PoolHooks): pg.Pool {
  const lifetimeMs = o.maxLifetimeMs
  // pg-pool's connectionTimeoutMillis arms a timer on every connect() and
  // reaches the client too; the gate keeps pg-pool from queueing, so only
  // opening a connection needs a timeout: pg.Client's own, set here alone
  const connectTimeoutMs = o.acquireTimeoutMs
  class BoundedClient extends pg.Client {
    constructor (clientConfig?: string | pg.ClientConfig) {
      super({ ...(typeof clientConfig === 'string' ? { connectionString: clientConfig } : clientConfig), connectionTimeoutMillis: connectTimeoutMs })
    }
  }
  const pool: pg.Pool = new pg.Pool({
    keepAlive: true,
    application_name: o.applicationName,
    ...config,
    // server-side, so the backend stops working too (a client-side timeout leaves it running, node-postgres#1954)
    ...(o.statementTimeoutMs > 0 ? { statement_timeout: o.statementTimeoutMs } : {}),
    ...(o.idleInTransactionTimeoutMs > 0 ? { idle_in_transaction_session_timeout: o.idleInTransactionTimeoutMs } : {}),
    min: size.min,
    max: size.max,
    idleTimeoutMillis: o.idleTimeoutMs,
    connectionTimeoutMillis: 0,
    Client: BoundedClient,
    onConnect: (client) => {
      // pg emits twice for one loss (the server's FATAL message, then the socket's end): count it once
      let lost = false
      client.on('error', (err) => {
        if (lost) return
        lost = true
        hooks.lost(err)
      })
      // pg-pool reads maxLifetimeSeconds once per new client, right after this hook:
      // setting it here gives each connection its own jittered lifetime
      if (lifetimeMs > 0) pool.options.maxLifetimeSeconds = lifetimeMs * (1 - o.lifetimeJitter * Math.random()) / 1000
    }
  })
  // the client listener above already logged and counted it; without a listener here pg-pool's emit would crash the process
  pool.on('error', () => {})
  // pg-pool's min only stops idle clients from being closed; it never reopens
  // them. Top the pool up to min after a lost or expired connection so the
  // next burst does not pay for connects.
  let toppingUp = false
  const topUp = (): void => {
    if (toppingUp) return
    toppingUp = true
    // pool.connect() hands out idle clients before it opens new ones: ask for
    // the idle ones too, so `missing` new connections get opened
    setImmediate(() => {
      const missing = (pool.options.min ?? 0) - pool.totalCount
      const n = missing > 0 ? missing + pool.idleCount : 0
      Promise.allSettled(Array.from({ length: n }, () => pool.connect()))
        .then((clients) => { for (const c of clients) if (c.status === 'fulfilled') c.value.release() })
        .finally(() => {
          toppingUp = false
          if (!hooks.closing() && pool.totalCount < (pool.options.min ?? 0) && n > 0 && missing > 0) topUpLater()
        })
        .catch(() => {})
    }).unref()
  }

  const topUpLater = (): void => {
    // something removed clients while we were opening some; or the server refused them: try again in a second, not in a tight loop
    setTimeout(() => { if (!hooks.closing()) topUp() }, 1000).unref()
  }
  pool.on('remove', () => { if (!hooks.closing()) topUp() })
  return pool
}

/** opens `min` connections of `pool` now rather than on the first requests; what failed, if any did */
export async function prefill (pool: pg.Pool): Promise<unknown> {
  const n = pool.options.min ?? 0
  const clients = await Promise.allSettled(Array.from({ length: n }, () => pool.connect()))
  let failed: unknown
  for (const c of clients) {
    if (c.status === 'fulfilled') c.value.release()
    else failed = c.reason
  }
  return failed
}
