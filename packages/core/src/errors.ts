import createError from '@fastify/error'

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
