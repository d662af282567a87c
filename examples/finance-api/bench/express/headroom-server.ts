import build from '../../../../benchmarks/capacity/server.js'
import { countQueries } from './queries.js'

/**
 * The example as the capacity run builds it (its own createApp; CAPACITY_CACHE=off
 * replaces its cache's wrap() with the loader in this process only, since the
 * example has no switch of its own), plus GET /__queries for the query counter.
 */
export default async function buildHeadroom (env: NodeJS.ProcessEnv) {
  const queries = countQueries()
  const app = await build(env)
  app.get('/__queries', async () => ({ queries: queries() }))
  return app
}
