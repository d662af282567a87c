import { loadConfig } from '../src/config.js'
import { serviceIdentity } from '../src/logging.js'
import { createApp } from '../src/server.js'
import { startTracing } from '../src/tracing.js'

/**
 * The tracing-overhead scenario's server: the app as server.ts's main starts
 * it, tracing included when the variant's OTEL_* variables ask for it.
 */
export default async function build (env: NodeJS.ProcessEnv) {
  const config = loadConfig(env)
  if (config.tracing) await startTracing(env, serviceIdentity(config.env))
  return createApp(config)
}
