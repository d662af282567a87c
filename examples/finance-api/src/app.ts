import fastifyCookie from '@fastify/cookie'
import fastifyHelmet from '@fastify/helmet'
import fastifySession from '@fastify/session'
import { headroomHealth } from '@headroom/health'
import { headroomPool } from '@headroom/pool'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import type { Db } from './db.js'
import type { Caches, Deps, SessionControl } from './deps.js'
import { InsightsModel } from './insights.js'
import { MarketClient } from './market.js'
import { authRoutes } from './routes/auth.js'
import { financeRoutes } from './routes/finance.js'
import { staticRoutes } from './static.js'

export interface AppOptions {
  config: Config
  /** the primary's URL: DATABASE_URL, or the embedded server's */
  databaseUrl: string
  logger?: FastifyServerOptions['logger']
  /** drain on SIGTERM/SIGINT and exit (the server's main); tests close the app themselves */
  handleSignals?: boolean
  /** injected for tests: count calls, change latency */
  market?: MarketClient
  insights?: InsightsModel
}

export interface FinanceApp extends FastifyInstance {
  deps: Deps
}

/** Builds the app, not listening. Migrations have run already (server.ts). */
export async function buildApp (opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel },
    trustProxy: config.trustProxy,
    forceCloseConnections: true
  })

  // first: its onRequest hooks time every route, and its probes are never shed, limited or counted
  await app.register(headroomHealth, {
    serviceId: 'finance-api',
    handleSignals: opts.handleSignals ?? false,
    drainDelayMs: config.drainDelayMs,
    metrics: config.metricsToken === undefined ? {} : { token: config.metricsToken }
  })

  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      directives: {
        'script-src': ["'self'"],
        'connect-src': ["'self'"],
        // plain http is only for a laptop; there, upgrading would break the page
        'upgrade-insecure-requests': config.env === 'production' ? [] : null
      }
    },
    hsts: config.env === 'production'
  })

  // every query goes through @headroom/pool: bounded waits, metrics, replicas
  await app.register(headroomPool, {
    primary: opts.databaseUrl,
    replicas: config.replicaUrls,
    applicationName: 'finance-api'
  })
  // With replicas, request.db keeps the WAL position of the user's last write
  // in the session, so the next request's reads see it (read-your-writes).
  // Without replicas there is nothing to wait for: the shared fastify.db
  // skips that bookkeeping (one WAL-position query per write).
  // (the casts: the pool types rows as pg's QueryResultRow, the repo as its own interfaces)
  const db = config.replicaUrls.length > 0
    ? (request: FastifyRequest) => request.db as unknown as Db
    : () => app.db as unknown as Db

  // interim: @fastify/session's memory store until @headroom/session is wired in
  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: config.sessionSecrets,
    cookieName: 'sid',
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', secure: config.env === 'production', maxAge: 7 * 24 * 3600_000, path: '/' }
  })
  const sessions: SessionControl = {
    async loggedIn () {},
    async logoutEverywhere (request) {
      await request.session.destroy()
      return 1
    }
  }

  // interim: no cache until @headroom/cache is wired in
  const caches: Caches = {
    summary: (_u, load) => load(),
    invalidateUser: async () => {},
    quote: (_s, load) => load(),
    insights: (_u, load) => load()
  }

  const deps: Deps = {
    config,
    db,
    caches,
    sessions,
    market: opts.market ?? new MarketClient({ latencyMs: config.market.latencyMs, failureRate: config.market.failureRate }),
    insights: opts.insights ?? new InsightsModel(config.insights.costMs)
  }

  await app.register(staticRoutes)
  await app.register(authRoutes, { deps })
  await app.register(financeRoutes, { deps })
  return app
}
