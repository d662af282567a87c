import { DEFAULT_MAX as POOL_MAX } from '@headroom/pool'
import { MIN_SECRET_LENGTH, secretWeakness } from '@headroom/session'
import type { LoginLimits } from './login-guard.js'
import { REQUEST_LOG_MODES, type RequestLogMode } from './logging.js'
import type { ServerTimeouts } from './timeouts.js'
import { tracingRequested } from './tracing.js'
import { envReader, parseRedisUrl, parseTrustProxy, type Env, type RedisTarget, type TrustProxy } from './env.js'

/**
 * Configuration from the environment, validated once at startup. Every
 * problem names the variable; all problems are reported together so a
 * deployment is fixed in one round trip, not one variable at a time.
 */
export { CONFIG_VARIABLES, SECRET_VARIABLES, type ConfigVariable } from './variables.js'
export type { RedisTarget, TrustProxy } from './env.js'

/** The development secret: usable on a laptop, refused when NODE_ENV=production. */
export const DEV_SESSION_SECRET = 'finance-api-development-secret-change-me-please'

/** @default 'finance:' */
export const DEFAULT_REDIS_KEY_PREFIX = 'finance:'
/** @default 3000 */
export const DEFAULT_PORT = 3000
/** @default '127.0.0.1' (only this machine; set HOST=0.0.0.0 behind a load balancer) */
export const DEFAULT_HOST = '127.0.0.1'
/** @default 80 */
export const DEFAULT_MARKET_LATENCY_MS = 80
/** @default 0.02 */
export const DEFAULT_MARKET_FAILURE_RATE = 0.02
/** @default 5 */
export const DEFAULT_QUOTE_TTL_S = 5
/** @default 400 */
export const DEFAULT_INSIGHTS_COST_MS = 400
/** @default 3600 */
export const DEFAULT_INSIGHTS_TTL_S = 3600
/** @default 60 */
export const DEFAULT_SUMMARY_TTL_S = 60
/** @default 500 (the seed's limit) */
export const DEFAULT_RATE_LIMIT_MAX = 500
/** @default 900000 (15 minutes) */
export const DEFAULT_RATE_LIMIT_WINDOW_MS = 15 * 60_000
/** @default 10000 in production (a load balancer's probe period), 0 elsewhere (Ctrl-C stops at once) */
export const DEFAULT_DRAIN_DELAY_MS = 10_000
/** @default 10 */
export const DEFAULT_LOGIN_LIMIT_MAX = 10
/** @default 900000 (15 minutes): the window of every failed-login counter and of the signup counter */
export const DEFAULT_LOGIN_FAILURE_WINDOW_MS = 15 * 60_000
/** @default 10: failed logins per account from addresses that have not logged into it */
export const DEFAULT_LOGIN_ACCOUNT_FAILURES_MAX = 10
/** @default 50: failed logins per address (IPv6 /64), whatever the emails */
export const DEFAULT_LOGIN_ADDRESS_FAILURES_MAX = 50
/** @default 5: failed logins per address and account, cleared by a successful login */
export const DEFAULT_LOGIN_PAIR_FAILURES_MAX = 5
/** @default 10: signups per address (IPv6 /64) */
export const DEFAULT_SIGNUP_ADDRESS_MAX = 10
/** @default 2592000000 (30 days): how long a successful login keeps an address known to the account */
export const KNOWN_ADDRESS_MS = 30 * 86_400_000
/** @default 4 (libuv's thread pool, where scrypt runs): password hashes at once per instance */
export const DEFAULT_PASSWORD_HASH_CONCURRENCY = 4
/** @default 10000 (nginx's client_header_timeout in deploy/nginx) */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000
/** @default 30000: headers and body */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000
/** @default 72000: above the load balancer's idle timeout (nginx upstream keepalive_timeout 60 s) */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 72_000
/** @default 'errors' in production (5xx and slow requests), 'all' elsewhere */
export const DEFAULT_REQUEST_LOG: Record<Config['env'], RequestLogMode> = { production: 'errors', development: 'all', test: 'all' }
/** @default 1000: in REQUEST_LOG=errors, a request slower than this gets a line */
export const DEFAULT_REQUEST_LOG_SLOW_MS = 1000
/**
 * @default 100: 4 × @headroom/pool's `max` (25). Every route runs its
 * queries one after the other, so a request waits for at most one
 * connection: at most 100 requests in flight keep the pool's queue (25
 * connections + 100 waiting) from overflowing first, with room left for
 * the health checks and for the queries of requests whose client has gone
 * (counted out at once, their query still running).
 */
export const DEFAULT_MAX_IN_FLIGHT = 4 * POOL_MAX

export interface Config {
  env: 'development' | 'production' | 'test'
  host: string
  port: number
  logLevel: string
  /** REQUEST_LOG and REQUEST_LOG_SLOW_MS: which requests get a log line of their own (logging.ts) */
  requestLog: { mode: RequestLogMode, slowMs: number }
  /** MAX_IN_FLIGHT: requests in flight at which a new one is shed (503 + Retry-After: 1); 0: no bound */
  maxInFlight: number
  /** undefined: the embedded PGlite server */
  databaseUrl: string | undefined
  replicaUrls: string[]
  /**
   * The Redis deployments, by use: `sessions` holds sessions and rate limits,
   * `cache` the cache and its invalidation bus. Both undefined: in-memory
   * stores (one instance); the same target twice: one shared client.
   */
  redis: { sessions: RedisTarget | undefined, cache: RedisTarget | undefined }
  /** every Redis key this app writes starts with it (several apps, or test runs, can share one Redis) */
  redisKeyPrefix: string
  /** persist the embedded database in this directory; undefined: in memory */
  pgliteDataDir: string | undefined
  /**
   * MIGRATE_ON_START: apply migrations/*.sql before serving. Default true for
   * the embedded database (nothing else would), false with DATABASE_URL: the
   * migrations are a step of their own (`pnpm --filter finance-api migrate`,
   * the image's `node deploy/migrate.mjs`, the Kubernetes Job) and an instance
   * only checks the schema version, refusing one older than it needs.
   */
  migrateOnStart: boolean
  /** newest first: the first signs, all verify */
  sessionSecrets: string[]
  /** Fastify's `trustProxy`: false, true, a hop count, or the proxies' addresses and CIDRs */
  trustProxy: TrustProxy
  market: { latencyMs: number, failureRate: number, quoteTtlS: number }
  insights: { costMs: number, ttlS: number }
  summaryTtlS: number
  rateLimit: { max: number, windowMs: number, loginMax: number }
  /** failed-login and signup counters (login-guard.ts) */
  login: LoginLimits
  passwordHashConcurrency: number
  /** the HTTP server's timeouts for slow and idle clients (timeouts.ts) */
  server: ServerTimeouts
  /** how long a draining instance keeps serving after SIGTERM, failing readiness, before it closes */
  drainDelayMs: number
  /** bearer token for /metrics from any address; without it only loopback and private ranges may read it */
  metricsToken: string | undefined
  /** ERROR_REPORTER: the module whose default export builds the error reporter (error-reporting.ts); undefined: no error tracking */
  errorReporter: string | undefined
  /** the OTEL_* variables ask for tracing (tracing.ts reads them again when it starts) */
  tracing: boolean
}

export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super('invalid configuration:\n  - ' + problems.join('\n  - '))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export function loadConfig (env: Env = process.env): Config {
  const problems: string[] = []
  const str = envReader(env, problems)
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = str(name)
    if (raw === undefined) return def
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`)
      return def
    }
    return n
  }
  const bool = (name: string, def: boolean): boolean => {
    const raw = str(name)
    if (raw === undefined) return def
    if (raw !== 'true' && raw !== 'false') problems.push(`${name} must be true or false (got "${raw}")`)
    return raw === 'true'
  }
  const ratio = (name: string, def: number): number => {
    const raw = str(name)
    if (raw === undefined) return def
    const n = Number(raw)
    if (!Number.isFinite(n) || n < 0 || n > 1) {
      problems.push(`${name} must be a number from 0 to 1 (got "${raw}")`)
      return def
    }
    return n
  }
  const url = (name: string, raw: string, protocols: string[]): string => {
    let parsed: URL
    try {
      parsed = new URL(raw)
    } catch {
      problems.push(`${name} is not a URL (expected ${protocols[0]}//…)`)
      return raw
    }
    if (!protocols.includes(parsed.protocol)) problems.push(`${name} must start with ${protocols.join(' or ')}// (got ${parsed.protocol}//…)`)
    return raw
  }

  const nodeEnv = str('NODE_ENV') ?? 'development'
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    problems.push(`NODE_ENV must be development, production or test (got "${nodeEnv}")`)
  }
  const production = nodeEnv === 'production'

  const databaseUrlRaw = str('DATABASE_URL')
  const databaseUrl = databaseUrlRaw === undefined ? undefined : url('DATABASE_URL', databaseUrlRaw, ['postgres:', 'postgresql:'])
  const replicaUrls = (str('DATABASE_REPLICA_URLS') ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  replicaUrls.forEach((r, i) => url(`DATABASE_REPLICA_URLS[${i}]`, r, ['postgres:', 'postgresql:']))
  if (replicaUrls.length > 0 && databaseUrl === undefined) {
    problems.push('DATABASE_REPLICA_URLS needs DATABASE_URL (replicas of the embedded database do not exist)')
  }
  const redis = redisTargets(str, problems)

  const secretsRaw = str('SESSION_SECRET')
  const sessionSecrets = (secretsRaw ?? DEV_SESSION_SECRET).split(',').map((s) => s.trim()).filter(Boolean)
  problems.push(...secretProblems(sessionSecrets, secretsRaw, production))
  const metricsToken = str('METRICS_TOKEN')
  if (metricsToken !== undefined && metricsToken.length < 16) problems.push('METRICS_TOKEN must be at least 16 characters')

  if (production && databaseUrl === undefined) {
    problems.push('DATABASE_URL must be set when NODE_ENV=production (the embedded PGlite database is for development)')
  }

  const trustProxyParsed = parseTrustProxy(str('TRUST_PROXY') ?? 'false')
  let trustProxy: TrustProxy = false
  if (typeof trustProxyParsed === 'object' && 'problem' in trustProxyParsed) problems.push(trustProxyParsed.problem)
  else trustProxy = trustProxyParsed

  const logLevel = str('LOG_LEVEL') ?? 'info'
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "${logLevel}")`)
  }

  const requestLogRaw = str('REQUEST_LOG')
  const requestLog = (requestLogRaw ?? DEFAULT_REQUEST_LOG[production ? 'production' : 'development']) as RequestLogMode
  if (!(REQUEST_LOG_MODES as readonly string[]).includes(requestLog)) {
    problems.push(`REQUEST_LOG must be one of ${REQUEST_LOG_MODES.join(', ')} (got "${requestLog}"): all logs every request, errors only 5xx and requests slower than REQUEST_LOG_SLOW_MS, off none`)
  }

  const config: Config = {
    env: nodeEnv as Config['env'],
    host: str('HOST') ?? DEFAULT_HOST,
    port: int('PORT', DEFAULT_PORT, 0, 65535),
    logLevel,
    requestLog: { mode: requestLog, slowMs: int('REQUEST_LOG_SLOW_MS', DEFAULT_REQUEST_LOG_SLOW_MS, 1, 3_600_000) },
    maxInFlight: int('MAX_IN_FLIGHT', DEFAULT_MAX_IN_FLIGHT, 0, 1_000_000),
    databaseUrl,
    replicaUrls,
    redis,
    redisKeyPrefix: str('REDIS_KEY_PREFIX') ?? DEFAULT_REDIS_KEY_PREFIX,
    pgliteDataDir: str('PGLITE_DATA_DIR'),
    migrateOnStart: bool('MIGRATE_ON_START', databaseUrl === undefined),
    sessionSecrets,
    trustProxy,
    market: {
      latencyMs: int('MARKET_LATENCY_MS', DEFAULT_MARKET_LATENCY_MS, 0, 60_000),
      failureRate: ratio('MARKET_FAILURE_RATE', DEFAULT_MARKET_FAILURE_RATE),
      quoteTtlS: int('QUOTE_TTL_S', DEFAULT_QUOTE_TTL_S, 1, 3600)
    },
    insights: {
      costMs: int('INSIGHTS_COST_MS', DEFAULT_INSIGHTS_COST_MS, 0, 60_000),
      ttlS: int('INSIGHTS_TTL_S', DEFAULT_INSIGHTS_TTL_S, 1, 86_400)
    },
    summaryTtlS: int('SUMMARY_TTL_S', DEFAULT_SUMMARY_TTL_S, 1, 86_400),
    rateLimit: {
      max: int('RATE_LIMIT_MAX', DEFAULT_RATE_LIMIT_MAX, 1, 10_000_000),
      windowMs: int('RATE_LIMIT_WINDOW_MS', DEFAULT_RATE_LIMIT_WINDOW_MS, 1000, 86_400_000),
      loginMax: int('LOGIN_RATE_LIMIT_MAX', DEFAULT_LOGIN_LIMIT_MAX, 1, 10_000)
    },
    login: {
      windowMs: int('LOGIN_FAILURE_WINDOW_MS', DEFAULT_LOGIN_FAILURE_WINDOW_MS, 1000, 86_400_000),
      accountFailures: int('LOGIN_ACCOUNT_FAILURES_MAX', DEFAULT_LOGIN_ACCOUNT_FAILURES_MAX, 1, 10_000),
      addressFailures: int('LOGIN_ADDRESS_FAILURES_MAX', DEFAULT_LOGIN_ADDRESS_FAILURES_MAX, 1, 100_000),
      pairFailures: int('LOGIN_PAIR_FAILURES_MAX', DEFAULT_LOGIN_PAIR_FAILURES_MAX, 1, 10_000),
      signups: int('SIGNUP_ADDRESS_MAX', DEFAULT_SIGNUP_ADDRESS_MAX, 1, 100_000),
      knownMs: KNOWN_ADDRESS_MS
    },
    passwordHashConcurrency: int('PASSWORD_HASH_CONCURRENCY', DEFAULT_PASSWORD_HASH_CONCURRENCY, 1, 1024),
    server: serverTimeouts(int, problems),
    drainDelayMs: int('DRAIN_DELAY_MS', production ? DEFAULT_DRAIN_DELAY_MS : 0, 0, 600_000),
    metricsToken,
    errorReporter: str('ERROR_REPORTER'),
    tracing: tracingRequested(env, problems)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

/**
 * REDIS_URL for every use, SESSION_REDIS_URL / CACHE_REDIS_URL for one. Half
 * a Redis is refused: sessions shared while the cache stays in one process
 * would miss the other instances' invalidations (stale summaries), and the
 * reverse would log users out when the balancer switches instance.
 */
function redisTargets (str: (name: string) => string | undefined, problems: string[]): Config['redis'] {
  let invalid = false
  const target = (name: string): RedisTarget | undefined => {
    const raw = str(name)
    if (raw === undefined) return undefined
    const parsed = parseRedisUrl(name, raw)
    if (!('problem' in parsed)) return parsed
    problems.push(parsed.problem)
    invalid = true
    return undefined
  }
  const shared = target('REDIS_URL')
  const sessions = target('SESSION_REDIS_URL') ?? shared
  const cache = target('CACHE_REDIS_URL') ?? shared
  if (!invalid && (sessions === undefined) !== (cache === undefined)) {
    problems.push(sessions === undefined
      ? 'CACHE_REDIS_URL is set but sessions and rate limits have no Redis: set SESSION_REDIS_URL or REDIS_URL too'
      : 'SESSION_REDIS_URL is set but the cache has no Redis: set CACHE_REDIS_URL or REDIS_URL too (a cache in one process misses the other instances\' invalidations)')
  }
  return { sessions, cache }
}

/**
 * SESSION_SECRET by @headroom/session's own rule (`secretWeakness`, what
 * the plugin refuses at start-up in production), so a value accepted here is
 * never refused later. Outside production the plugin takes any non-empty
 * secret; this check still asks for MIN_SECRET_LENGTH characters.
 */
function secretProblems (secrets: string[], raw: string | undefined, production: boolean): string[] {
  if (secrets.length === 0) return ['SESSION_SECRET holds no secret (only commas and spaces)']
  if (production && (raw === undefined || secrets.includes(DEV_SESSION_SECRET))) {
    return ['SESSION_SECRET must be set to a secret of your own when NODE_ENV=production (the development default is refused)']
  }
  const problems: string[] = []
  secrets.forEach((secret, i) => {
    const why = production ? secretWeakness(secret) : secret.length < MIN_SECRET_LENGTH ? 'too short' : null
    const which = secrets.length > 1 ? ` (secret ${i + 1} of ${secrets.length})` : ''
    if (why !== null) problems.push(`SESSION_SECRET${which}: ${why}; it must be at least ${MIN_SECRET_LENGTH} random characters (comma-separate several to rotate: newest first), e.g. from \`openssl rand -base64 48\``)
  })
  return problems
}

/** HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS, and the one combination Node refuses. */
function serverTimeouts (int: (name: string, def: number, min: number, max: number) => number, problems: string[]): ServerTimeouts {
  const timeouts = {
    headersTimeoutMs: int('HEADERS_TIMEOUT_MS', DEFAULT_HEADERS_TIMEOUT_MS, 100, 600_000),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS, 100, 3_600_000),
    keepAliveTimeoutMs: int('KEEP_ALIVE_TIMEOUT_MS', DEFAULT_KEEP_ALIVE_TIMEOUT_MS, 1000, 3_600_000)
  }
  if (timeouts.headersTimeoutMs > timeouts.requestTimeoutMs) {
    problems.push(`HEADERS_TIMEOUT_MS (${timeouts.headersTimeoutMs}) must not exceed REQUEST_TIMEOUT_MS (${timeouts.requestTimeoutMs}): the request timeout counts the headers too`)
  }
  return timeouts
}
