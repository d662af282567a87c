import Fastify from 'fastify'
import pg from 'pg'
import { lookupSql, POOL_MAX } from './shared.js'

/** The baseline: a raw pg.Pool of the same size, as an app without the plugin would use it. */
export default async function build (env: NodeJS.ProcessEnv) {
  const { url, sql } = lookupSql(env)
  const pool = new pg.Pool({ connectionString: url, max: POOL_MAX })
  pool.on('error', () => {})
  const app = Fastify({ logger: false })
  app.get<{ Params: { id: string } }>('/accounts/:id', async (request) => (await pool.query(sql, [Number(request.params.id)])).rows[0])
  app.addHook('onClose', async () => { await pool.end() })
  return app
}
