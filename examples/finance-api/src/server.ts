import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { checkDatabase, DatabaseUnreachableError } from './database-check.js'
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js'
import { loadErrorReporter } from './error-reporting.js'
import { serviceIdentity } from './logging.js'
import { migrate, schemaStatus, SchemaTooOldError } from './migrate.js'
import { startTracing } from './tracing.js'

export interface Running {
  url: string
  app: FastifyInstance
  close (): Promise<void>
}

/**
 * Everything `pnpm start` does before listening, callable from tests and the
 * load scenario: the embedded database when DATABASE_URL is absent (closed
 * with the app), migrations, the app.
 */
export async function createApp (config: Config, overrides: Omit<AppOptions, 'config' | 'databaseUrl' | 'afterClose'> = {}): Promise<FastifyInstance> {
  const t0 = performance.now()
  let embedded: EmbeddedPostgres | undefined
  const databaseUrl = config.databaseUrl ?? (embedded = await startEmbeddedPostgres({ dataDir: config.pgliteDataDir })).url
  try {
    const started = performance.now()
    // DATABASE_URL unusable (down, wrong host, port, name or credentials): one line and exit 1, no waiting (README)
    if (!embedded) await checkDatabase(databaseUrl)
    const applied = config.migrateOnStart ? await migrate(databaseUrl) : []
    const schema = await schemaStatus(databaseUrl)
    if (schema.missing.length > 0) throw new SchemaTooOldError(schema)
    const migratedMs = performance.now()
    const app = await buildApp({ ...overrides, config, databaseUrl, afterClose: embedded && (() => embedded!.close()) })
    // the phases of a start, for scripts/start-time.ts: when node started, how long
    // the imports took (bootMs), the embedded database, migrations, the plugins
    app.log.info({ startup: { processStartedAt: Math.round(performance.timeOrigin), bootMs: Math.round(t0), embeddedMs: Math.round(started - t0), migrateMs: Math.round(migratedMs - started), appMs: Math.round(performance.now() - migratedMs) }, applied, schemaVersion: schema.current },
      applied.length > 0 ? `migrations applied: ${applied.join(', ')}` : `schema at version ${schema.current}, up to date`)
    if (schema.unknown.length > 0) {
      app.log.warn(`database schema is at version ${schema.current}, newer than this build's ${schema.needed} (unknown migrations: ${schema.unknown.join(', ')}): serving, as migrations only add; roll forward this build`)
    }
    if (!embedded && !config.redis.sessions) {
      app.log.warn('REDIS_URL is not set: sessions, rate limits and the cache live in this process only; run a single instance, or set REDIS_URL')
    }
    if (embedded) {
      const where = `PGlite on ${embedded.url.replace(/^postgres:\/\/[^@]*@/, '')} (${config.pgliteDataDir ? `data in ${config.pgliteDataDir}` : 'in memory, gone at exit'})`
      app.log.info(config.redis.sessions
        ? `embedded mode: ${where} with Redis for sessions, rate limits and cache; set DATABASE_URL (and DATABASE_REPLICA_URLS) to use a real PostgreSQL`
        : `embedded mode: ${where} and in-memory sessions, rate limits and cache, one instance only; set DATABASE_URL (and DATABASE_REPLICA_URLS) and REDIS_URL to use real servers`)
    }
    return app
  } catch (err) {
    await embedded?.close()
    throw err
  }
}

/** createApp, then listen on HOST:PORT. */
export async function start (config: Config, overrides: Omit<AppOptions, 'config' | 'databaseUrl' | 'afterClose'> = {}): Promise<Running> {
  const app = await createApp(config, overrides)
  try {
    const url = await app.listen({ host: config.host, port: config.port })
    return { url, app, close: () => app.close() }
  } catch (err) {
    await app.close()
    throw err
  }
}

async function main () {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(1)
    }
    throw err
  }
  // OTEL_* asked for traces (config.tracing): the SDK starts before the app
  // is built, so the first request is traced; flushed when the app closes
  const identity = serviceIdentity(config.env)
  if (config.tracing) await startTracing(process.env, identity)
  // ERROR_REPORTER: 5xx errors and unhandled rejections go to it
  const errorReporter = await loadErrorReporter(config.errorReporter, identity)
  // @headroom/health drains on SIGTERM/SIGINT: readiness fails, the server
  // serves DRAIN_DELAY_MS more, closes (pool, Redis, embedded database), exits
  try {
    await start(config, { handleSignals: true, errorReporter })
  } catch (err) {
    if (err instanceof SchemaTooOldError || err instanceof DatabaseUnreachableError) {
      console.error(err.message)
      process.exit(1)
    }
    throw err
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main()
}
