import Fastify from 'fastify'
import headroomPool from '../../src/index.js'
import { SUMMARY_SQL } from '../summary-data.js'
import { POOL_MAX } from './shared.js'

/** GET /summary/:user through fastify.db.query: unnamed, or with POOL_PREPARE=1 as a named prepared statement */
export default async function build (env: NodeJS.ProcessEnv) {
  const options = env.POOL_BENCH_OPTIONS
  if (options === undefined) throw new Error('POOL_BENCH_OPTIONS is not set by the scenario setup')
  const prepare = env.POOL_PREPARE === '1'
  const app = Fastify({ logger: false })
  await app.register(headroomPool, { primary: { connectionString: env.DATABASE_URL, options }, max: POOL_MAX })
  app.get<{ Params: { user: string } }>('/summary/:user', async (request) =>
    (await app.db.query(SUMMARY_SQL, [Number(request.params.user)], { prepare })).rows[0])
  return app
}
