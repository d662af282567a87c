import { isolatedSchema, LogLines, sleep } from '@headroom/testing'
import pg from 'pg'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { DEFAULT_MAX_IN_FLIGHT, loadConfig } from '../src/config.js'
import { loggerOptions, serviceIdentity } from '../src/logging.js'
import { migrate } from '../src/migrate.js'
import { Client } from './helpers.js'

interface Hit { status: number, retryAfter: string | null, code?: string, requestId?: string }

/** more than the bound, fewer than the pool's 25 connections + 100 waiting would need to overflow twice */
const CONCURRENT = DEFAULT_MAX_IN_FLIGHT + 150

t.test('overload is shed first: more concurrent slow requests than MAX_IN_FLIGHT get 503 OVERLOADED + Retry-After at once, none a pool-exhausted 503, the probes answer', async (t) => {
  const { url } = await isolatedSchema(t)
  await migrate(url)
  const logs = new LogLines()
  const app = await buildApp({
    config: loadConfig({ DATABASE_URL: url, NODE_ENV: 'test', REQUEST_LOG: 'errors', RATE_LIMIT_MAX: '100000' }),
    databaseUrl: url,
    logger: { ...(loggerOptions('info', serviceIdentity('test'), false) as object), stream: logs.stream }
  })
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Client(base)
  t.equal((await client.signup('shed@example.com', 'long enough password')).status, 201)

  // every transaction-list query now waits for this lock: each admitted request holds a pool connection or a place in its queue
  const locker = new pg.Client({ connectionString: url })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE')
  let locked = true
  const unlock = async () => {
    if (!locked) return
    locked = false
    await locker.query('COMMIT')
  }
  t.teardown(unlock)

  const get = async (path: string, cookie?: string): Promise<Hit> => {
    const res = await fetch(base + path, { headers: cookie ? { cookie } : {} })
    // (/metrics is text)
    const body = await res.json().catch(() => ({})) as { code?: string, requestId?: string }
    return { status: res.status, retryAfter: res.headers.get('retry-after'), code: body.code, requestId: body.requestId }
  }
  const pending = Array.from({ length: CONCURRENT }, () => get('/api/transactions', client.cookie))
  // the excess is answered while the admitted requests still wait for the lock
  const answered: Hit[] = []
  const tracked = pending.map((p) => p.then((h) => { answered.push(h); return h }))
  const deadline = Date.now() + 60_000
  while (answered.length < CONCURRENT - DEFAULT_MAX_IN_FLIGHT && Date.now() < deadline) await sleep(20)
  t.ok(answered.length >= CONCURRENT - DEFAULT_MAX_IN_FLIGHT, `${answered.length} answered while the database is locked`)
  t.ok(answered.every((h) => h.status === 503 && h.code === 'HEADROOM_HEALTH_OVERLOADED'), 'each of them shed')
  t.equal((await get('/health')).status, 200, 'liveness answers while the bound is reached')
  t.equal((await get('/metrics')).status, 200, '/metrics answers')
  t.ok([200, 503].includes((await get('/health/ready')).status), 'readiness answers (its pool check may wait behind the lock)')
  await unlock()

  const hits = await Promise.all(tracked)
  const ok = hits.filter((h) => h.status === 200)
  const shed = hits.filter((h) => h.code === 'HEADROOM_HEALTH_OVERLOADED')
  t.same(hits.filter((h) => h.code === 'HEADROOM_POOL_EXHAUSTED'), [], 'no pool-exhausted 503')
  t.same(hits.filter((h) => h.status !== 200 && h.code !== 'HEADROOM_HEALTH_OVERLOADED'), [], 'every answer is a 200 or the shedding 503')
  t.ok(ok.length > 0 && ok.length <= DEFAULT_MAX_IN_FLIGHT, `${ok.length} admitted, at most MAX_IN_FLIGHT (${DEFAULT_MAX_IN_FLIGHT})`)
  t.equal(ok.length + shed.length, CONCURRENT)
  for (const h of shed) {
    t.equal(h.status, 503)
    t.equal(h.retryAfter, '1', 'Retry-After: 1')
    t.match(h.requestId, /^req-/, 'the request id, as every error body')
  }
  // REQUEST_LOG=errors: no line per shed request, one when shedding started
  const shedIds = new Set(shed.map((h) => h.requestId))
  t.same(logs.lines.filter((l) => shedIds.has(l.reqId)), [], 'no log line per shed request')
  t.equal(logs.lines.filter((l) => l.msg?.startsWith('load shedding started')).length, 1, 'one line when shedding started')
  t.equal((await get('/api/transactions', client.cookie)).status, 200, 'admitted again once the excess is gone')
})
