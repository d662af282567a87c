import Fastify from 'fastify'
import headroomPool from '../../src/index.js'
import { lookupSql, POOL_MAX } from './shared.js'

/** @headroom/pool with its defaults (bounded queue, metrics, leak and slow-query tracking on) and the same max. */
export default async function build (env: NodeJS.ProcessEnv) {
  const { url, sql } = lookupSql(env)
  const app = Fastify({ logger: false })
  await app.register(headroomPool, { primary: url, max: POOL_MAX })
  app.get<{ Params: { id: string } }>('/accounts/:id', async (request) => (await app.db.query(sql, [Number(request.params.id)])).rows[0])
  return app
}
