import createError from '@fastify/error'

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

/** a per-user operation (list, log out everywhere) needs Redis, and Redis is unavailable */
export const Unavailable = createError<[string]>(
  'HEADROOM_SESSION_UNAVAILABLE',
  'Session store unavailable: %s',
  503
)
