import t from 'tap'
import { ConfigError, DEV_SESSION_SECRET, loadConfig } from '../src/config.js'

function problems (env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test('no environment at all is a valid development config on the embedded database', async (t) => {
  const c = loadConfig({})
  t.equal(c.env, 'development')
  t.equal(c.databaseUrl, undefined)
  t.equal(c.redisUrl, undefined)
  t.same(c.sessionSecrets, [DEV_SESSION_SECRET])
  t.equal(c.port, 3000)
})

t.test('every invalid variable is named, all at once', async (t) => {
  const found = problems({ PORT: 'eighty', DATABASE_URL: 'mysql://x', REDIS_URL: 'nope', MARKET_FAILURE_RATE: '2', LOG_LEVEL: 'loud', TRUST_PROXY: 'yes' })
  for (const name of ['PORT', 'DATABASE_URL', 'REDIS_URL', 'MARKET_FAILURE_RATE', 'LOG_LEVEL', 'TRUST_PROXY']) {
    t.ok(found.some((p) => p.startsWith(name)), `${name} is named: ${found.join(' | ')}`)
  }
})

t.test('production refuses the default secret, a short secret and the embedded database', async (t) => {
  const prod = problems({ NODE_ENV: 'production' })
  t.ok(prod.some((p) => p.startsWith('SESSION_SECRET') && p.includes('production')))
  t.ok(prod.some((p) => p.startsWith('DATABASE_URL')))
  t.ok(problems({ NODE_ENV: 'production', DATABASE_URL: 'postgres://db/x', SESSION_SECRET: DEV_SESSION_SECRET }).some((p) => p.startsWith('SESSION_SECRET')))
  t.ok(problems({ SESSION_SECRET: 'short' }).some((p) => p.startsWith('SESSION_SECRET') && p.includes('32')))
  const ok = loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://db/x', SESSION_SECRET: 'a'.repeat(40) + ',' + 'b'.repeat(40) })
  t.same(ok.sessionSecrets, ['a'.repeat(40), 'b'.repeat(40)], 'several secrets, newest first')
})

t.test('replicas without a primary are refused', async (t) => {
  t.ok(problems({ DATABASE_REPLICA_URLS: 'postgres://r1/x' }).some((p) => p.startsWith('DATABASE_REPLICA_URLS')))
  t.same(loadConfig({ DATABASE_URL: 'postgres://p/x', DATABASE_REPLICA_URLS: 'postgres://r1/x, postgres://r2/x' }).replicaUrls, ['postgres://r1/x', 'postgres://r2/x'])
})

t.test('logged errors keep no PostgreSQL detail (it quotes the values a user sent)', async (t) => {
  const { safeError } = await import('../src/logging.js')
  const pgError = Object.assign(new Error('duplicate key value violates unique constraint "users_email_key"'), {
    code: '23505', detail: 'Key (lower(email))=(ada@example.com) already exists.', where: 'x', internalQuery: 'y'
  })
  const logged = safeError(pgError)
  t.equal(logged.code, '23505')
  t.notOk(JSON.stringify(logged).includes('ada@example.com'))
})
