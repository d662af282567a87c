import { createError } from '@fastify/error'

export const InvalidOption = createError<[string, string]>(
  'HEADROOM_HEALTH_INVALID_OPTION',
  '@headroom/health: option "%s" %s',
  500,
  TypeError
)

export const UnderPressure = createError(
  'HEADROOM_HEALTH_UNDER_PRESSURE',
  'Service Unavailable: the server is under pressure, retry later',
  503
)

export const Overloaded = createError(
  'HEADROOM_HEALTH_OVERLOADED',
  'Service Unavailable: this instance has too many requests in progress, retry later',
  503
)

export const MetricsForbidden = createError(
  'HEADROOM_HEALTH_METRICS_FORBIDDEN',
  'Metrics are not served to this address',
  403
)

export const MetricsUnauthorized = createError(
  'HEADROOM_HEALTH_METRICS_UNAUTHORIZED',
  'Metrics need a valid bearer token',
  401
)
