import { createError } from '@fastify/error'

/** a bad option, at register/ready */
export const InvalidOption = createError<[string, string]>(
  'HEADROOM_SESSION_INVALID_OPTION',
  'Invalid @headroom/session option "%s": %s',
  500
)

/** production refuses a secret that is missing, short, a placeholder or repetitive */
export const WeakSecret = createError<[string]>(
  'HEADROOM_SESSION_WEAK_SECRET',
  'Refusing to start in production: %s. Pass `secret` (or an array of secrets, newest first) of at least 32 random characters, e.g. from `openssl rand -base64 48`.',
  500
)

/**
 * the session would exceed `maxSize` once serialized: 413, since what the
 * request asked to store is what does not fit; nothing is stored and the
 * session keeps what it held before the request
 */
export const TooLarge = createError<[number, number]>(
  'HEADROOM_SESSION_TOO_LARGE',
  'The session would be %d bytes once serialized, over maxSize (%d bytes): nothing was saved; keep large data out of the session (store an id, load the rest)',
  413
)

/**
 * A per-user operation (list, log out everywhere) needs Redis, and Redis is
 * unavailable: a 503 with Retry-After (`headers`, which Fastify's error
 * handler copies). The message names the operation only; the Redis error is
 * the `cause`, for the logs.
 */
export const Unavailable = createError<[string]>(
  'HEADROOM_SESSION_UNAVAILABLE',
  'Sessions are temporarily unavailable: %s needs the session store, which cannot be reached. Retry later.',
  503
)

/** Unavailable with its cause and a Retry-After */
export function unavailable (operation: string, cause: unknown, retryAfterSeconds: number): Error {
  const err = new Unavailable(operation) as Error & { headers?: Record<string, string> }
  err.cause = cause
  err.headers = { 'retry-after': String(retryAfterSeconds) }
  return err
}
