/**
 * Where the shared servers are. CI and the project's machines run both on
 * their standard ports; a developer points elsewhere with the variables.
 */
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test'
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

export function databaseUrl (): string {
  return process.env.DATABASE_URL || DEFAULT_DATABASE_URL
}

export function redisUrl (): string {
  return process.env.REDIS_URL || DEFAULT_REDIS_URL
}
