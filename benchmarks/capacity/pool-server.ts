/**
 * The pool claim's server: @headroom/pool with POOL_MAX connections and one
 * route running the example's summary query (repo.ts portfolioSummary) for
 * the user in the path: a database-bound request and nothing else, so the
 * pool is the only thing two configurations differ in.
 */
import { headroomPool } from '@headroom/pool'
import Fastify from 'fastify'
import type { Db } from '../../examples/finance-api/src/db.js'
import { portfolioSummary } from '../../examples/finance-api/src/repo.js'

export default async function build (env: NodeJS.ProcessEnv) {
  const app = Fastify({ logger: false })
  await app.register(headroomPool, { primary: env.DATABASE_URL!, max: Number(env.POOL_MAX), applicationName: 'capacity-pool' })
  app.get<{ Params: { user: string } }>('/summary/:user', async (request) => {
    return portfolioSummary(app.db as unknown as Db, request.params.user)
  })
  app.get('/__capacity', async () => {
    const cpu = process.cpuUsage()
    return { pid: process.pid, cpuUserUs: cpu.user, cpuSystemUs: cpu.system, quoteCalls: 0, insightCalls: 0 }
  })
  return app
}
