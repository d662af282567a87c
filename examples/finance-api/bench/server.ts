import { loadConfig } from '../src/config.js'
import { createApp } from '../src/server.js'

/** The load scenario's server: the real app from the environment the harness passes (DATABASE_URL, REDIS_URL, …). */
export default async function build (env: NodeJS.ProcessEnv) {
  return createApp(loadConfig(env))
}
