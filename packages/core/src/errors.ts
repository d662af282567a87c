import { createError } from '@fastify/error'

export const DuplicateCheck = createError<[string]>(
  'HEADROOM_CORE_DUPLICATE_CHECK',
  'A health check named "%s" is already registered',
  500
)

export const RedisUnavailable = createError<[string]>(
  'HEADROOM_CORE_REDIS_UNAVAILABLE',
  'Redis is unavailable: %s',
  503
)

export const RedisTimeout = createError<[number]>(
  'HEADROOM_CORE_REDIS_TIMEOUT',
  'Redis did not answer within %d ms',
  503
)

export const CircuitOpen = createError<[string]>(
  'HEADROOM_CORE_CIRCUIT_OPEN',
  'Circuit "%s" is open: not calling the dependency until it recovers',
  503
)

/** A plugin option that cannot work, e.g. a `redis` that is not an ioredis client. */
export const InvalidOption = createError<[string, string, string]>(
  'HEADROOM_CORE_INVALID_OPTION',
  'Invalid %s option "%s": %s',
  500,
  TypeError
)

/** Two copies of @headroom/core with different majors of the hub contract in one app. */
export const IncompatibleHub = createError<[string, string]>(
  'HEADROOM_CORE_INCOMPATIBLE_HUB',
  'Two incompatible copies of @headroom/core in one app: this one speaks hub contract %s, the app\'s hub was created by one speaking %s. Install a single @headroom/core (it is a peer dependency of every headroom plugin) so the plugins share one hub',
  500
)
