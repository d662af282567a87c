import { headroomCache, type Namespace, type UserNamespace } from '@headroom/cache'
import { headroomHealth, shedReason } from '@headroom/health'
import { headroomPool } from '@headroom/pool'
import { headroomRateLimit } from '@headroom/ratelimit'
import { headroomSession } from '@headroom/session'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import type { Db } from './db.js'
import type { Caches, Deps, SessionControl } from './deps.js'
import { errorHandler } from './error-handler.js'
import { ErrorReporting, reportUnhandledRejections, type ErrorReporter } from './error-reporting.js'
import { InsightsModel, type Insights } from './insights.js'
import { loggerOptions, prettyLogs, RequestLog, serviceIdentity } from './logging.js'
import { LoginGuard, loginPolicies } from './login-guard.js'
import { HashGate } from './passwords.js'
import { MarketClient } from './market.js'
import { echoRequestId, requestId } from './request-id.js'
import { connectRedis } from './redis.js'
import { authRoutes } from './routes/auth.js'
import { financeRoutes } from './routes/finance.js'
import { schemaErrorFormatter, validatorCompiler } from './schemas.js'
import { securityHeaderOptions, securityHeaders } from './security-headers.js'
import { staticRoutes } from './static.js'
import { serverOptions } from './timeouts.js'
import { flushTracing, traceHttp, tracingStarted } from './tracing.js'

declare module '@headroom/cache' {
  interface CacheNamespaces {
    summary: { perUser: true }
    quotes: { perUser: false }
    insights: { perUser: true }
  }
}

/** @default 600000: a quote up to 10 minutes old is served while the provider fails */
export const QUOTE_STALE_IF_ERROR_MS = 10 * 60_000
const SUMMARY_KEY = 'summary'
const INSIGHTS_KEY = 'insights'

export interface AppOptions {
  config: Config
  /** the primary's URL: DATABASE_URL, or the embedded server's */
  databaseUrl: string
  logger?: FastifyServerOptions['logger']
  /** drain on SIGTERM/SIGINT and exit (the server's main); tests close the app themselves */
  handleSignals?: boolean
  /** runs after everything else has closed (the embedded database, once the pool has ended) */
  afterClose?: () => Promise<void>
  /** injected for tests: count calls, change latency */
  market?: MarketClient
  insights?: InsightsModel
  /** the password-hashing bound; default PASSWORD_HASH_CONCURRENCY at once (tests watch it) */
  hashGate?: HashGate
  /** error tracking (error-reporting.ts): each 5xx once, and unhandled rejections when handleSignals; none by default */
  errorReporter?: ErrorReporter
}

/**
 * The whole composition, top to bottom. Order matters where noted: Fastify
 * runs onClose hooks in reverse, and route-level plugins (rate limit) must
 * see the routes registered after them.
 */
export async function buildApp (opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts
  const identity = serviceIdentity(config.env)
  // REQUEST_LOG: every request, only 5xx and slow ones, or none (logging.ts);
  // pretty logs on a terminal: one line per request
  const requestLog = new RequestLog({ ...config.requestLog, pretty: opts.logger === undefined && prettyLogs(config.env) })
  const app = Fastify({
    logger: opts.logger ?? loggerOptions(config.logLevel, identity),
    // an incoming x-request-id (nginx's $request_id) or traceparent, else a new one;
    // logged as reqId on every line of the request, echoed in x-request-id, and the
    // requestId of error bodies (request-id.ts)
    // (logged under Fastify's default label, reqId)
    genReqId: requestId,
    logController: requestLog,
    trustProxy: config.trustProxy,
    // 'idle', not true: a close (the end of a drain) ends idle keep-alive
    // connections but answers requests in flight; true would cut a POST still
    // uploading its body, which a load balancer cannot retry (test/drain.test.ts).
    // @headroom/health's drain timeout bounds the wait.
    forceCloseConnections: 'idle',
    // and a request that still arrives while the server closes (on a connection the
    // balancer had just opened) is served, not answered Fastify's own 503 without
    // Retry-After, which nginx does not retry: the plugins' dependencies close only
    // after the server has (test/drain.test.ts; seen in topology's rolling restart)
    return503OnClosing: false,
    // slow and idle clients: HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS
    ...serverOptions(config.server)
  })
  // strict JSON bodies, text and dates PostgreSQL can store (schemas.ts); no internals in error responses
  app.setValidatorCompiler(validatorCompiler).setSchemaErrorFormatter(schemaErrorFormatter)
  const reporting = opts.errorReporter && new ErrorReporting(opts.errorReporter, identity, app.log)
  const clientErrors = requestLog.clientErrors
  const handleError: typeof errorHandler = reporting
    ? (err, request, reply) => {
        const body = errorHandler(err, request, reply, clientErrors)
        // (a request shed by @headroom/health is overload, not an error: counted, never reported one by one)
        if (body.statusCode >= 500 && shedReason(request) === undefined) reporting.request(err, request, body.statusCode)
        return body
      }
    : (err, request, reply) => errorHandler(err, request, reply, clientErrors)
  app.setErrorHandler(handleError)
  // added first, so they run last: the plugins have flushed, ended their connections and their spans
  if (tracingStarted()) {
    app.addHook('onClose', flushTracing)
    // before any route and plugin: the server span of every request but probes and static files (tracing.ts)
    traceHttp(app)
  }
  if (reporting) {
    app.addHook('onClose', () => reporting.flush())
    if (opts.handleSignals === true) {
      // the process is the server's: its unhandled rejections are reported too
      const stop = reportUnhandledRejections(reporting, app.log)
      app.addHook('onClose', async () => stop())
    }
  }
  if (opts.afterClose) app.addHook('onClose', opts.afterClose)
  echoRequestId(app)

  // Redis (when configured) before the plugins, each given the client of its
  // use: sessions and rate limits the "sessions" Redis, the cache its own
  // (the same client when REDIS_URL alone is set)
  const redis = await connectRedis(config.redis, app.log)
  app.addHook('onClose', () => redis.close())

  // first of the plugins: its onRequest hooks time every route, and its probes are never shed, limited or counted
  await app.register(headroomHealth, {
    serviceId: 'finance-api',
    handleSignals: opts.handleSignals ?? false,
    drainDelayMs: config.drainDelayMs,
    // MAX_IN_FLIGHT (default 4 × the pool's max): the excess is refused at once, before
    // it waits in the pool's queue (config.ts); the probes and /metrics are never shed
    pressure: { maxInFlight: config.maxInFlight },
    // which Redis each use depends on, next to the plugins' own checks
    checks: redis.checks,
    metrics: config.metricsToken === undefined ? {} : { token: config.metricsToken }
  })

  // helmet's headers with the example's options, computed once at start (security-headers.ts)
  securityHeaders(app, securityHeaderOptions(config.env === 'production'))

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

  // Sessions in Redis (this instance's memory while Redis is away), indexed per
  // user so log-out-everywhere costs O(that user's sessions). Before the rate
  // limit: its identity is the session's user.
  await app.register(headroomSession, {
    secret: config.sessionSecrets,
    keyPrefix: `${config.redisKeyPrefix}session:`,
    redis: redis.sessions,
    production: config.env === 'production'
  })
  // (setting session.userId at login is what indexes a session under its user)
  const sessions: SessionControl = {
    async logoutEverywhere (request, userId) {
      const ended = await app.sessions.destroyUser(userId)
      // this request's own copy would otherwise be saved again on the way out
      await request.session.destroy()
      return ended
    }
  }

  // 500 per 15 minutes per user (per address before login), shared by every
  // instance through Redis; /assets/*, the probes and /metrics are free. Login
  // and signup have a policy of their own, keyed by address and email (every
  // attempt), and the failure counters of login-guard.ts: failed logins per
  // address (IPv6 /64), per account (from addresses new to it), per address
  // and account, signups per address.
  await app.register(headroomRateLimit, {
    limit: config.rateLimit.max,
    window: config.rateLimit.windowMs,
    prefix: `${config.redisKeyPrefix}rl:`,
    redis: redis.sessions,
    identify: (request) => request.session?.userId,
    policies: {
      credentials: {
        limit: config.rateLimit.loginMax,
        window: '1m',
        hook: 'preHandler',
        key: (request, client) => {
          const email = (request.body as { email?: unknown } | undefined)?.email
          return typeof email === 'string' ? `${client}:${email.toLowerCase().slice(0, 254)}` : undefined
        }
      },
      ...loginPolicies(config.login)
    }
  })
  const guard = new LoginGuard(app.headroomRateLimit, opts.hashGate ?? new HashGate(config.passwordHashConcurrency))

  // Two tiers (this process's L1, Redis L2 shared by every instance), each
  // namespace with the policy its data can bear. Per-user namespaces cannot
  // address another user's entry: the user is part of every key by construction.
  await app.register(headroomCache, {
    prefix: `${config.redisKeyPrefix}cache:`,
    redis: redis.cache,
    namespaces: {
      // invalidated on every write of the user, so the TTL only bounds memory
      summary: { perUser: true, ttl: config.summaryTtlS * 1000 },
      // seconds fresh; if the provider fails, a quote up to 10 minutes old beats none
      quotes: { ttl: config.market.quoteTtlS * 1000, staleIfError: QUOTE_STALE_IF_ERROR_MS },
      // an hour, and one model call across all instances (a Redis lease), not one per instance
      insights: { perUser: true, ttl: config.insights.ttlS * 1000, lease: true }
    }
  })
  // (the casts restate the CacheNamespaces declaration above for programs
  // that also see @headroom/cache's sources, where the merge does not reach)
  const summaryNs = app.cache.ns('summary') as UserNamespace
  const insightsNs = app.cache.ns('insights') as UserNamespace
  const quotesNs = app.cache.ns('quotes') as Namespace
  const caches: Caches = {
    summary: (userId, load) => summaryNs.forUser(userId).wrap(SUMMARY_KEY, load),
    async invalidateUser (userId) {
      await summaryNs.forUser(userId).delete(SUMMARY_KEY)
      // Insights stay for their hour whatever the user writes (that is their
      // price), except "nothing to say yet": the first transactions should
      // not wait an hour to be looked at.
      const insights = insightsNs.forUser(userId)
      const cached = await insights.get<Insights>(INSIGHTS_KEY)
      if (cached?.basedOn === 0) await insights.delete(INSIGHTS_KEY)
    },
    quote: (symbol, load) => quotesNs.wrap(symbol, load),
    insights: (userId, load) => insightsNs.forUser(userId).wrap(INSIGHTS_KEY, load)
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
  await app.register(authRoutes, { deps, guard, credentialRouteConfig: { rateLimit: { groupId: 'credentials' } } })
  await app.register(financeRoutes, { deps })
  return app
}
