import { getHub } from '@headroom/core/contracts'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { describe, errorCode } from './classify.js'
import { Db, DbSession, type TokenStore } from './db.js'
import { createMetrics } from './metrics.js'
import { QueryNames } from './names.js'
import { normalizeOptions, type PoolOptions } from './options.js'
import { Target, type TargetContext } from './target.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** PostgreSQL: primary, replicas, transactions, raw pools (@headroom/pool) */
    db: Db
  }
  interface FastifyRequest {
    /** `fastify.db` with read-your-writes for this request (and its session, when there is one) */
    db: DbSession
  }
}

const kSession = Symbol('headroom.pool.session')
type WithSession = FastifyRequest & { [kSession]: DbSession | null }

function currentSession (request: FastifyRequest): TokenStore | null {
  const session = (request as unknown as { session?: Partial<TokenStore> }).session
  return session != null && typeof session.get === 'function' && typeof session.set === 'function' ? session as TokenStore : null
}

/**
 * `request.session` as it is at each use, not as it was when request.db was
 * first touched: `regenerate()` replaces the request's session object, and a
 * token stored afterwards must land in the new one.
 */
function sessionStore (request: FastifyRequest): TokenStore | null {
  if (currentSession(request) === null) return null
  return {
    get: (key) => currentSession(request)?.get(key),
    set: (key, value) => currentSession(request)?.set(key, value)
  }
}

const plugin: FastifyPluginAsync<PoolOptions> = async (fastify, opts) => {
  const options = normalizeOptions(opts)
  const hub = getHub(fastify)
  const metrics = createMetrics(hub.registry)
  const ctx: TargetContext = { options, log: fastify.log, metrics, names: new QueryNames(options.maxQueryNames) }
  const db = new Db(ctx, new Target('primary', 'primary', options.primary, { min: options.min, max: options.max }, ctx))

  const untrack = [db.primaryTarget, ...db.replicaSet.map((r) => r.target)].map((t) => metrics.track(t))
  for (const r of db.replicaSet) untrack.push(metrics.trackReplica(r))

  fastify.decorate('db', db)
  // one DbSession per request, made on first use: requests that never touch request.db pay nothing
  fastify.decorateRequest(kSession as unknown as string, null)
  fastify.decorateRequest('db', {
    getter (this: FastifyRequest) {
      const request = this as WithSession
      request[kSession] ??= new DbSession(db, null, options.sessionKey === false ? null : sessionStore(request), options.sessionKey)
      return request[kSession]
    }
  })

  const checks = ['postgres:primary', ...db.replicaSet.map((r) => `postgres:replica:${r.index}`)]
  hub.addCheck({
    name: 'postgres:primary',
    owner: '@headroom/pool',
    critical: true,
    check: async () => {
      try {
        await db.primaryTarget.use('health check', (c) => c.query('SELECT 1'))
        const { total, idle, waiting } = db.primaryTarget.stats()
        return { status: 'pass', observedValue: total - idle, observedUnit: `connections in use (${waiting} waiting)` }
      } catch (err) {
        // a saturated pool is busy, not down: degraded rather than not ready
        if (errorCode(err) === 'HEADROOM_POOL_EXHAUSTED' || errorCode(err) === 'HEADROOM_POOL_ACQUIRE_TIMEOUT') {
          return { status: 'warn', output: describe(err) }
        }
        return { status: 'fail', output: describe(err) }
      }
    }
  })
  for (const r of db.replicaSet) {
    hub.addCheck({ name: `postgres:replica:${r.index}`, owner: '@headroom/pool', critical: false, check: () => r.health() })
  }

  fastify.addHook('onClose', async () => {
    for (const name of checks) hub.removeCheck(name)
    for (const stop of untrack) stop()
    await db.close(options.closeTimeoutMs)
  })

  await db.start()
}

export const headroomPool = fp(plugin, { fastify: '5.x', name: '@headroom/pool' })
export default headroomPool

export { Db, DbSession, type QueryOptions, type ReadOptions, type Transaction, type TransactionOptions, type QueryText, type TokenStore } from './db.js'
export type { ConsistencyToken } from './lsn.js'
export { isConnectionError } from './classify.js'
export { normalizeStatement } from './names.js'
export * from './options.js'
export * as errors from './errors.js'
