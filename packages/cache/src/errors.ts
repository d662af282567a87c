import { createError } from '@fastify/error'

export const InvalidOption = createError<[string, string]>(
  'HEADROOM_CACHE_INVALID_OPTION',
  'Invalid @headroom/cache option "%s": %s',
  500
)

export const UnknownNamespace = createError<[string]>(
  'HEADROOM_CACHE_UNKNOWN_NAMESPACE',
  'Cache namespace "%s" is not declared in the `namespaces` option',
  500
)

export const InvalidKey = createError<[string]>(
  'HEADROOM_CACHE_INVALID_KEY',
  'Invalid cache key: %s',
  500
)

export const InvalidUser = createError<[string]>(
  'HEADROOM_CACHE_INVALID_USER',
  'Invalid user for a per-user cache namespace: %s',
  500
)

export const UserRequired = createError<[string, string]>(
  'HEADROOM_CACHE_USER_REQUIRED',
  'Cache namespace "%s" is per-user: %s',
  500
)

export const FactoryTimeout = createError<[number]>(
  'HEADROOM_CACHE_FACTORY_TIMEOUT',
  'The cache factory did not finish within its hard timeout of %d ms',
  503
)
