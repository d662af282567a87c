import { connectRedisApp } from './connect-redis.js'

/**
 * The same stack tuned the way @fastify/session's documentation recommends
 * when saving on every request is not needed: `rolling: false` (an unchanged
 * session is neither saved nor re-sent) and `saveUninitialized: false`. An
 * authenticated read then costs one GET, as headroom's costs one HGETALL.
 */
export default async function build (env: NodeJS.ProcessEnv) {
  return connectRedisApp(env, 'connect-redis-tuned', { rolling: false, saveUninitialized: false })
}
