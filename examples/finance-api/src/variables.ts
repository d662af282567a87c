/**
 * Every environment variable the app reads, with what it means. The deploy
 * files (Dockerfile, compose, Kubernetes manifests) are checked against this
 * list, and the README's configuration table documents the same names, so a
 * variable added to config.ts without an entry here is a bug.
 */
export interface ConfigVariable {
  name: string
  description: string
}

/**
 * The variables that carry secrets (passwords in URLs, signing keys,
 * tokens). Each may instead be read from a file named by `<NAME>_FILE`
 * (Docker and Kubernetes secrets are mounted as files).
 */
export const SECRET_VARIABLES = [
  'SESSION_SECRET', 'DATABASE_URL', 'DATABASE_REPLICA_URLS', 'METRICS_TOKEN',
  'REDIS_URL', 'SESSION_REDIS_URL', 'CACHE_REDIS_URL'
] as const

const PLAIN: ConfigVariable[] = [
  { name: 'NODE_ENV', description: 'development, production or test; production turns on Secure cookies, HSTS, a 10 s drain delay, and refuses default secrets and the embedded database' },
  { name: 'HOST', description: 'listen address (0.0.0.0 or :: behind a load balancer)' },
  { name: 'PORT', description: 'listen port (0: any free port)' },
  { name: 'LOG_LEVEL', description: 'pino level: fatal, error, warn, info, debug, trace or silent' },
  { name: 'REQUEST_LOG', description: 'which requests get a log line: all, errors (5xx and requests slower than REQUEST_LOG_SLOW_MS; the production default) or off' },
  { name: 'REQUEST_LOG_SLOW_MS', description: 'with REQUEST_LOG=errors, a request slower than this (milliseconds) gets a line' },
  { name: 'MAX_IN_FLIGHT', description: 'requests in flight on the instance at which a new one is refused at once with 503 HEADROOM_HEALTH_OVERLOADED and Retry-After: 1 (probes and /metrics exempt); 0: no bound' },
  { name: 'DATABASE_URL', description: 'the primary PostgreSQL (postgres://…); unset: the embedded PGlite database' },
  { name: 'DATABASE_REPLICA_URLS', description: 'comma-separated streaming replicas for reads (needs DATABASE_URL)' },
  { name: 'MIGRATE_ON_START', description: 'true: apply the migrations before serving; false: only check the schema version and refuse an older one (run `pnpm --filter finance-api migrate` or the image\'s `node deploy/migrate.mjs` first)' },
  { name: 'PGLITE_DATA_DIR', description: 'keep the embedded database in this directory across restarts' },
  { name: 'REDIS_URL', description: 'Redis for sessions, rate limits and the cache: redis[s]://host:port or redis[s]+cluster://host1:port,host2:port' },
  { name: 'SESSION_REDIS_URL', description: 'Redis for sessions and rate limits, overriding REDIS_URL for them (same forms)' },
  { name: 'CACHE_REDIS_URL', description: 'Redis for the cache and its invalidation bus, overriding REDIS_URL for it (same forms)' },
  { name: 'REDIS_KEY_PREFIX', description: 'prefix of every Redis key this app writes' },
  { name: 'SESSION_SECRET', description: 'at least 32 characters; comma-separate several to rotate (the first signs, all verify); required in production, where each must pass @headroom/session\'s rule (no placeholder, at least 8 distinct characters)' },
  { name: 'TRUST_PROXY', description: 'false, true, or comma-separated addresses/CIDRs (IPv4, IPv6) of the load balancers whose X-Forwarded-* headers are believed' },
  { name: 'METRICS_TOKEN', description: 'bearer token that opens /metrics from any address (at least 16 characters)' },
  { name: 'DRAIN_DELAY_MS', description: 'how long a SIGTERM\'d instance keeps serving with readiness failing' },
  { name: 'RATE_LIMIT_MAX', description: 'requests per window per user (per address before login)' },
  { name: 'RATE_LIMIT_WINDOW_MS', description: 'the rate-limit window in milliseconds' },
  { name: 'LOGIN_RATE_LIMIT_MAX', description: 'login and signup attempts per minute per address and email' },
  { name: 'LOGIN_FAILURE_WINDOW_MS', description: 'the window of the failed-login counters and of the signup counter, in milliseconds' },
  { name: 'LOGIN_ACCOUNT_FAILURES_MAX', description: 'failed logins per account in the window before addresses that have never logged into it are refused' },
  { name: 'LOGIN_ADDRESS_FAILURES_MAX', description: 'failed logins per address (IPv6: per /64) in the window, whatever the emails' },
  { name: 'LOGIN_PAIR_FAILURES_MAX', description: 'failed logins per address and account in the window (cleared by a successful login)' },
  { name: 'SIGNUP_ADDRESS_MAX', description: 'signups per address (IPv6: per /64) in the window' },
  { name: 'PASSWORD_HASH_CONCURRENCY', description: 'password hashes (scrypt) at once per instance; more logins and signups at once get 503 + Retry-After' },
  { name: 'HEADERS_TIMEOUT_MS', description: 'a request head must arrive within this (else 408 and the connection is closed)' },
  { name: 'REQUEST_TIMEOUT_MS', description: 'a whole request, head and body, must arrive within this (else 408 and the connection is closed)' },
  { name: 'KEEP_ALIVE_TIMEOUT_MS', description: 'an idle keep-alive connection is closed after this; keep it above the load balancer\'s idle timeout' },
  { name: 'SUMMARY_TTL_S', description: 'seconds a summary stays cached (invalidated on every write anyway)' },
  { name: 'QUOTE_TTL_S', description: 'seconds a market quote is fresh' },
  { name: 'INSIGHTS_TTL_S', description: 'seconds AI insights are cached' },
  { name: 'MARKET_LATENCY_MS', description: 'latency of the simulated market-data provider' },
  { name: 'MARKET_FAILURE_RATE', description: 'share of simulated provider calls that fail (0 to 1)' },
  { name: 'INSIGHTS_COST_MS', description: 'time one simulated AI-insights call takes' },
  { name: 'ERROR_REPORTER', description: 'error tracking: path (from the working directory) or package of a module whose default export builds the reporter of 5xx errors and unhandled rejections; unset: none' },
  // the OpenTelemetry SDK's standard variables the example documents (the SDK reads more: OTEL_BSP_*, OTEL_EXPORTER_OTLP_TIMEOUT, …)
  { name: 'OTEL_SDK_DISABLED', description: 'true: no tracing, whatever else is set' },
  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', description: 'the OTLP/HTTP receiver (http://collector:4318; /v1/traces is appended); setting it turns tracing on' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', description: 'the full traces URL (http://collector:4318/v1/traces), overriding OTEL_EXPORTER_OTLP_ENDPOINT; setting it turns tracing on' },
  { name: 'OTEL_TRACES_EXPORTER', description: 'otlp, console (spans on stdout) or none; unset: otlp when an endpoint is set, else no tracing' },
  { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', description: 'http/protobuf (default) or http/json' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', description: 'the same for traces only, overriding OTEL_EXPORTER_OTLP_PROTOCOL' },
  { name: 'OTEL_EXPORTER_OTLP_HEADERS', description: 'headers of each export (key=value,…), e.g. a vendor\'s API key' },
  { name: 'OTEL_SERVICE_NAME', description: 'the traces\' service.name (default finance-api)' },
  { name: 'OTEL_RESOURCE_ATTRIBUTES', description: 'more resource attributes (key=value,…), e.g. deployment.environment.name=staging' },
  { name: 'OTEL_TRACES_SAMPLER', description: 'parentbased_always_on (default), parentbased_traceidratio, traceidratio, always_on, always_off, …' },
  { name: 'OTEL_TRACES_SAMPLER_ARG', description: 'the ratio of the ratio samplers, 0 to 1 (e.g. 0.1: one trace in ten)' }
]

/** `<NAME>_FILE`: the variable read from a file, e.g. a mounted Kubernetes or Docker secret. */
export function fileVariable (name: string): string {
  return `${name}_FILE`
}

/** Every variable the app reads, the `*_FILE` forms included, in the order of the README's table. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = Object.freeze(PLAIN.flatMap((v) =>
  (SECRET_VARIABLES as readonly string[]).includes(v.name)
    ? [v, { name: fileVariable(v.name), description: `path of a file holding ${v.name} (read and trimmed when ${v.name} is unset; setting both is an error)` }]
    : [v]))
