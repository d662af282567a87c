import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify'
import t from 'tap'
import headroomCache from '@headroom/cache'
import headroomPool from '@headroom/pool'
import headroomRateLimit from '@headroom/ratelimit'
import { headroomSession } from '@headroom/session'
import { databaseUrl, isolatedRedis } from '@headroom/testing'
import { headroomHealth, type HealthReport } from '@headroom/health'

// Every headroom plugin, registered in every order and nesting an app can
// choose: readiness must run every plugin's checks and /metrics serve every
// plugin's metrics, wherever @headroom/health itself sits. The hub is
// anchored on the app's server, not on the encapsulation context that asked first.

type Name = 'health' | 'pool' | 'session' | 'cache' | 'ratelimit'
const ALL: Name[] = ['health', 'pool', 'session', 'cache', 'ratelimit']

const CHECKS = ['postgres:primary', 'redis:session', 'redis:cache', 'redis:ratelimit']
const METRICS = ['headroom_pool_connections', 'headroom_session_created_total', 'headroom_cache_hits_total', 'headroom_ratelimit_requests_total', 'headroom_health_check_status']

/**
 * A layout: groups registered in order; a group of more than one plugin, or
 * one marked `child`, is registered inside an encapsulated context
 * (`app.register(async (child) => ...)`), nested `depth` levels deep.
 */
interface Group { names: Name[], child: boolean, depth?: number }

function permutations<T> (items: T[]): T[][] {
  if (items.length <= 1) return [items]
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]))
}

function describe (layout: Group[]): string {
  return layout.map((g) => g.child ? `${'['.repeat(g.depth ?? 1)}${g.names.join(',')}${']'.repeat(g.depth ?? 1)}` : g.names.join(',')).join(' ')
}

function layouts (): Group[][] {
  const out: Group[][] = []
  // every order of the five, all in the root context
  for (const order of permutations(ALL)) out.push([{ names: order, child: false }])
  // each plugin alone in an encapsulated child, before and after the others (health included)
  for (const name of ALL) {
    const rest = ALL.filter((n) => n !== name)
    out.push([{ names: [name], child: true }, { names: rest, child: false }])
    out.push([{ names: rest, child: false }, { names: [name], child: true }])
    out.push([{ names: [name], child: true, depth: 3 }, { names: rest, child: false }])
  }
  // every plugin in a child context of its own, in either order around health
  out.push(ALL.map((n) => ({ names: [n], child: true })))
  out.push([...ALL].reverse().map((n) => ({ names: [n], child: true })))
  // the Redis plugins together in one child, health in another
  out.push([{ names: ['pool', 'session', 'cache', 'ratelimit'], child: true }, { names: ['health'], child: true }])
  out.push([{ names: ['health'], child: true, depth: 2 }, { names: ['pool', 'session', 'cache', 'ratelimit'], child: true, depth: 2 }])
  return out
}

t.test('readiness and /metrics include every plugin, whatever the order and the nesting', async (t) => {
  const r = await isolatedRedis(t)
  const client = r.client()
  client.on('error', () => {})
  const register: Record<Name, (app: FastifyInstance) => Promise<unknown>> = {
    health: async (app) => app.register(headroomHealth, { checkIntervalMs: 60_000, handleSignals: false, pressure: false }),
    pool: async (app) => app.register(headroomPool, { primary: databaseUrl(), min: 0, max: 1 }),
    session: async (app) => app.register(headroomSession, { redis: client, keyPrefix: `${r.prefix}s:`, secret: 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz', hot: false }),
    cache: async (app) => app.register(headroomCache, { redis: client, prefix: `${r.prefix}c:` }),
    ratelimit: async (app) => app.register(headroomRateLimit, { redis: client, prefix: `${r.prefix}r:` })
  }
  function nest (depth: number, names: Name[]): FastifyPluginAsync {
    return async (child) => {
      if (depth > 1) await child.register(nest(depth - 1, names))
      else for (const name of names) await register[name](child)
    }
  }

  const all = layouts()
  const failures: string[] = []
  for (const layout of all) {
    const app = Fastify()
    for (const group of layout) {
      if (group.child) await app.register(nest(group.depth ?? 1, group.names))
      else for (const name of group.names) await register[name](app)
    }
    try {
      await app.ready()
      const ready = await app.inject('/health/ready')
      const report = ready.json() as HealthReport
      const missingChecks = CHECKS.filter((c) => report.checks[c] === undefined)
      const metrics = await app.inject('/metrics')
      const missingMetrics = METRICS.filter((m) => !metrics.body.includes(`# TYPE ${m} `))
      if (ready.statusCode !== 200 || metrics.statusCode !== 200 || missingChecks.length > 0 || missingMetrics.length > 0) {
        failures.push(`${describe(layout)}: ready ${ready.statusCode}, /metrics ${metrics.statusCode}, missing checks [${missingChecks.join(', ')}], missing metrics [${missingMetrics.join(', ')}]`)
      }
    } finally {
      await app.close()
    }
  }
  t.equal(all.length, 139, 'layouts tried')
  t.same(failures, [], 'every layout: every check in readiness, every metric in /metrics')
})
