export { getHub, metric, kHub, HUB_CONTRACT, type Hub, type HealthCheck, type HealthCheckResult, type CheckRegistration } from './hub.js'
export {
  CircuitBreaker, type CircuitBreakerOptions, type CircuitState,
  DEFAULT_FAILURE_THRESHOLD, DEFAULT_RESET_TIMEOUT_MS, DEFAULT_MAX_RESET_TIMEOUT_MS
} from './breaker.js'
export { FastHistogram, type Observer } from './histogram.js'
export { raceTimeout } from './timeout.js'
export { RedisGuard, findRedis, servesSlots, withTimeout, DEFAULT_COMMAND_TIMEOUT_MS, type RedisClient, type RedisGuardOptions } from './redis.js'
export * as errors from './errors.js'
export { tracer, childSpan, withSpan, failSpan, recordingSpan } from './tracing.js'
export { InvalidationBus, type InvalidationBusOptions, type BusEnvelope } from './bus.js'
export { useRedis, isRedisClient, type UseRedisOptions, type RedisSeam } from './seam.js'
export { rejectUnknownOptions, closest, type OptionNames } from './options.js'
