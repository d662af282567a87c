import { isolatedRedis, isolatedSchema, type LogLines, type TestContext } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { loggerOptions, serviceIdentity } from '../src/logging.js'
import { migrate } from '../src/migrate.js'
import { Client } from './helpers.js'

/**
 * The app on an isolated schema of the shared PostgreSQL and a prefix of the
 * shared Redis, with no simulated latency and a generous rate limit (the
 * hostile-input tests send thousands of requests as two users).
 */
export async function hostileApp (t: TestContext, opts: { databaseUrl?: string, env?: Record<string, string>, logs?: LogLines, extra?: Partial<AppOptions>, routes?: (app: FastifyInstance) => void } = {}) {
  const url = opts.databaseUrl ?? (await isolatedSchema(t)).url
  const redis = await isolatedRedis(t)
  await migrate(url)
  const config = loadConfig({
    DATABASE_URL: url,
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: redis.prefix,
    LOG_LEVEL: 'silent',
    MARKET_LATENCY_MS: '0',
    MARKET_FAILURE_RATE: '0',
    INSIGHTS_COST_MS: '0',
    RATE_LIMIT_MAX: '1000000',
    LOGIN_RATE_LIMIT_MAX: '10000',
    ...opts.env
  })
  const logger = opts.logs ? { ...(loggerOptions('info', serviceIdentity('test'), false) as object), stream: opts.logs.stream } : undefined
  const app = await buildApp({ config, databaseUrl: url, ...(logger ? { logger } : {}), ...opts.extra })
  opts.routes?.(app)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** A signed-up, logged-in user and the id of their checking account. */
export async function user (app: FastifyInstance, email: string, name = 'Test User') {
  const client = new Client(app)
  const res = await client.signup(email, 'long enough password', name)
  if (res.status !== 201) throw new Error(`signup of ${email}: ${res.status} ${JSON.stringify(res.body)}`)
  const account = (await client.get('/api/accounts')).body.items[0].id as string
  return { client, account, id: res.body.user.id as string }
}

/** base64url of a JSON value or of raw text, as a cursor */
export function cursorOf (value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}
