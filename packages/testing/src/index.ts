export { databaseUrl, redisUrl, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from './env.js'
export { isolatedSchema, isolatedDatabase, type IsolatedSchema, type IsolatedDatabase } from './postgres.js'
export { isolatedRedis, deleteKeys, scanKeys, type IsolatedRedis } from './redis.js'
export { redisClient, clusterClient, whenReady, APP_REDIS_OPTIONS } from './clients.js'
export { testApp } from './app.js'
export { seamSuite, type SeamCase } from './seam.js'
export { LogLines, type LogLine } from './logs.js'
export {
  startPostgres, startReplica, PRIVATE_DIR_PREFIX,
  type PrivatePostgres, type PrivateReplica, type PrivatePostgresOptions
} from './private-postgres.js'
export {
  startRedis, startRedisCluster,
  type PrivateRedis, type PrivateRedisCluster, type PrivateRedisClusterOptions, type PrivateRedisOptions
} from './private-redis.js'
export { freePort, freePortPair } from './ports.js'
export { waitFor, sleep, isListening, isAlive } from './process.js'
export { guardExit, type TestContext } from './teardown.js'
export { uniqueId } from './ids.js'
