import { createError } from '@fastify/error'

/** A bad plugin option or route `config.rateLimit`, thrown at register/ready; or an unknown policy given to peek/charge/reset, thrown at the call. */
export const InvalidOption = createError<[string, string]>(
  'HEADROOM_RATELIMIT_INVALID_OPTION',
  'Invalid @headroom/ratelimit option "%s": %s',
  500
)

/** Sent (as problem+json) when a client is over its quota. */
export const QuotaExceeded = createError<[string, number]>(
  'HEADROOM_RATELIMIT_QUOTA_EXCEEDED',
  'Rate limit "%s" exceeded, retry in %d s',
  429
)

/** Sent (as problem+json) with `onStoreDown: 'closed'` while Redis cannot be reached. */
export const StoreUnavailable = createError<[string]>(
  'HEADROOM_RATELIMIT_STORE_UNAVAILABLE',
  'Rate-limit store unavailable: %s',
  503
)
