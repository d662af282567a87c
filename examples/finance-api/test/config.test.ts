import { DEFAULT_MAX, DEFAULT_MAX_WAITING } from '@headroom/pool'
import t from 'tap'
import { CONFIG_VARIABLES, ConfigError, DEFAULT_MAX_IN_FLIGHT, DEV_SESSION_SECRET, loadConfig, SECRET_VARIABLES } from '../src/config.js'

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
  t.same(c.redis, { sessions: undefined, cache: undefined })
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
  const [a, b] = ['k3J9xQ2mZp7VtR4wLs8NcY6bHf1DgE0u', 'Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcV']
  const ok = loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://db/x', SESSION_SECRET: `${a},${b}` })
  t.same(ok.sessionSecrets, [a, b], 'several secrets, newest first')
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

t.test('REDIS_URL: one server or a cluster; SESSION_REDIS_URL and CACHE_REDIS_URL override it per use', async (t) => {
  const one = loadConfig({ REDIS_URL: 'redis://:pw@cache.internal:6380/2' }).redis
  t.equal(one.sessions, one.cache, 'REDIS_URL alone: one Redis for every use')
  t.match(one.sessions, { mode: 'standalone', url: 'redis://:pw@cache.internal:6380/2', display: 'redis://cache.internal:6380' })

  const cluster = loadConfig({ REDIS_URL: 'rediss+cluster://app:s%40cret@10.0.0.1:7000,[fd00::2]:7001,node-3' }).redis.sessions
  t.same(cluster, {
    mode: 'cluster',
    nodes: [{ host: '10.0.0.1', port: 7000 }, { host: 'fd00::2', port: 7001 }, { host: 'node-3', port: 6379 }],
    username: 'app',
    password: 's@cret',
    tls: true,
    display: 'rediss+cluster://10.0.0.1:7000,[fd00::2]:7001,node-3:6379'
  }, 'startup nodes, credentials (percent-decoded) and TLS; the display carries no password')

  const split = loadConfig({ REDIS_URL: 'redis://shared:6379', CACHE_REDIS_URL: 'redis+cluster://c1:7000,c2:7000' }).redis
  t.match(split.sessions, { mode: 'standalone', display: 'redis://shared:6379' }, 'sessions keep REDIS_URL')
  t.match(split.cache, { mode: 'cluster', display: 'redis+cluster://c1:7000,c2:7000' }, 'the cache has its own')

  t.ok(problems({ SESSION_REDIS_URL: 'redis://s:6379' }).some((p) => p.startsWith('SESSION_REDIS_URL is set but the cache has no Redis')), 'half a Redis is refused')
  t.ok(problems({ CACHE_REDIS_URL: 'redis://c:6379' }).some((p) => p.startsWith('CACHE_REDIS_URL is set but sessions')))
  for (const [value, says] of [
    ['redis+cluster://', 'must look like'],
    ['redis+cluster://h1:7000,h2:99999', '"h2:99999" is not host:port'],
    ['redis+cluster://h1:7000/3', 'only database 0'],
    ['redis+cluster://h1:7000?x=1', 'must look like'],
    ['memcached://h:1', 'must start with redis://, rediss://, redis+cluster://']
  ]) {
    const found = problems({ REDIS_URL: value as string })
    t.ok(found.some((p) => p.startsWith('REDIS_URL') && p.includes(says as string)), `${value}: ${found.join(' | ')}`)
  }
})

t.test('TRUST_PROXY: true, false, or the load balancers\' addresses and CIDRs (IPv4 and IPv6); a hop count is refused', async (t) => {
  t.equal(loadConfig({}).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.5, 10.1.0.0/16,::1,fd00::/8,loopback' }).trustProxy, ['10.0.0.5', '10.1.0.0/16', '::1', 'fd00::/8', 'loopback'])
  const hops = problems({ TRUST_PROXY: '1' })
  t.match(hops[0], /^TRUST_PROXY=1: a hop count is not supported .*name the load balancers' addresses/)
  for (const bad of ['yes', '10.0.0.0/33', 'fd00::/129', '10.0.0.300', '10.0.0.1,example.com', '10.0.0.0/8/8']) {
    const found = problems({ TRUST_PROXY: bad })
    t.equal(found.length, 1, bad)
    t.match(found[0], /^TRUST_PROXY must be true, false, or a comma-separated list of IPv4\/IPv6 addresses or CIDRs .*not an address or CIDR: "/, `${bad}: ${found[0]}`)
  }
})

t.test('every secret can come from a file: X_FILE is read (trimmed) when X is unset; both set, or an unreadable file, is an error naming the variable', async (t) => {
  const dir = t.testdir({
    secret: `${'s'.repeat(40)}\n`,
    db: ' postgres://app:pw@db/finance \n',
    replicas: 'postgres://r1/finance,postgres://r2/finance',
    token: 'metrics-token-0123456789',
    redis: 'redis+cluster://r1:7000,r2:7000',
    sessions: 'redis://sessions:6379',
    cache: 'redis://cache:6379',
    empty: '\n'
  })
  const c = loadConfig({
    SESSION_SECRET_FILE: `${dir}/secret`,
    DATABASE_URL_FILE: `${dir}/db`,
    DATABASE_REPLICA_URLS_FILE: `${dir}/replicas`,
    METRICS_TOKEN_FILE: `${dir}/token`,
    REDIS_URL_FILE: `${dir}/redis`,
    SESSION_REDIS_URL_FILE: `${dir}/sessions`
  })
  t.same(c.sessionSecrets, ['s'.repeat(40)])
  t.equal(c.databaseUrl, 'postgres://app:pw@db/finance', 'trimmed')
  t.same(c.replicaUrls, ['postgres://r1/finance', 'postgres://r2/finance'])
  t.equal(c.metricsToken, 'metrics-token-0123456789')
  t.match(c.redis.cache, { mode: 'cluster' }, 'REDIS_URL from its file')
  t.match(c.redis.sessions, { mode: 'standalone', display: 'redis://sessions:6379' }, 'SESSION_REDIS_URL from its file')
  t.match(loadConfig({ REDIS_URL: 'redis://x:1', CACHE_REDIS_URL_FILE: `${dir}/cache` }).redis.cache, { display: 'redis://cache:6379' })

  const both = problems({ SESSION_SECRET: 'x'.repeat(40), SESSION_SECRET_FILE: `${dir}/secret` })
  t.same(both, ['SESSION_SECRET and SESSION_SECRET_FILE are both set: set only one of them'])
  const missing = problems({ DATABASE_URL_FILE: `${dir}/nope` })
  t.equal(missing.length, 1)
  t.match(missing[0], /^DATABASE_URL_FILE: cannot read .*\/nope \(ENOENT\), so DATABASE_URL has no value$/)
  t.match(problems({ METRICS_TOKEN_FILE: dir })[0], /^METRICS_TOKEN_FILE: cannot read .* \(EISDIR\)/, 'a directory is not a file')
  t.match(problems({ REDIS_URL_FILE: `${dir}/empty` })[0], /^REDIS_URL_FILE: .* is empty/)
  t.ok(problems({ NODE_ENV: 'production', DATABASE_URL: 'postgres://db/x', SESSION_SECRET_FILE: `${dir}/nope` }).some((p) => p.startsWith('SESSION_SECRET_FILE')),
    'production names the file, not only the missing secret')
})

t.test('CONFIG_VARIABLES lists every variable config.ts reads, each with a description, and the README documents each one', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const names = CONFIG_VARIABLES.map((v) => v.name)
  t.equal(new Set(names).size, names.length, 'no name twice')
  for (const v of CONFIG_VARIABLES) t.ok(v.description.length > 10, `${v.name} has a description`)
  const source = await readFile(new URL('../src/config.ts', import.meta.url), 'utf8')
  const read = [...source.matchAll(/(?:str|int|ratio|target)\('([A-Z_]+)'/g)].map((m) => m[1] as string)
  t.ok(read.length > 20, `found the reads in config.ts (${read.length})`)
  for (const name of read) t.ok(names.includes(name), `${name} is listed`)
  for (const name of SECRET_VARIABLES) t.ok(names.includes(`${name}_FILE`), `${name}_FILE is listed`)
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  for (const name of names) t.ok(readme.includes(`| \`${name}\` |`), `${name} is in the README's table`)
})

const PROD = { NODE_ENV: 'production', DATABASE_URL: 'postgres://db/x', SESSION_SECRET: 'k3J9xQ2mZp7VtR4wLs8NcY6bHf1DgE0u' }

t.test('REQUEST_LOG: all by default in development, errors (5xx and slow requests) in production; a bad value is a startup error naming it', async (t) => {
  t.same(loadConfig({}).requestLog, { mode: 'all', slowMs: 1000 })
  t.same(loadConfig(PROD).requestLog, { mode: 'errors', slowMs: 1000 })
  t.same(loadConfig({ ...PROD, REQUEST_LOG: 'all', REQUEST_LOG_SLOW_MS: '250' }).requestLog, { mode: 'all', slowMs: 250 })
  t.equal(loadConfig({ REQUEST_LOG: 'off' }).requestLog.mode, 'off')
  const bad = problems({ REQUEST_LOG: 'verbose', REQUEST_LOG_SLOW_MS: 'soon' })
  t.match(bad, [/^REQUEST_LOG must be one of all, errors, off \(got "verbose"\)/, /^REQUEST_LOG_SLOW_MS must be an integer/])
  t.ok(problems({ REQUEST_LOG: 'info' }).length === 1, 'a pino level is not a mode')
})

t.test('MAX_IN_FLIGHT: 4 × the pool\'s max by default, below what the pool\'s queue holds; 0 turns it off; a bad value is named', async (t) => {
  t.equal(DEFAULT_MAX_IN_FLIGHT, 4 * DEFAULT_MAX)
  t.ok(DEFAULT_MAX_IN_FLIGHT < DEFAULT_MAX + DEFAULT_MAX_WAITING, 'the pool\'s queue cannot overflow before the bound sheds')
  t.equal(loadConfig({}).maxInFlight, DEFAULT_MAX_IN_FLIGHT)
  t.equal(loadConfig({ MAX_IN_FLIGHT: '0' }).maxInFlight, 0)
  t.match(problems({ MAX_IN_FLIGHT: '-1' }), [/^MAX_IN_FLIGHT must be an integer from 0/])
})
