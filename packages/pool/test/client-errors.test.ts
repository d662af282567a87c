import t, { type Test } from 'tap'
import { freePort, isolatedSchema, startPostgres, sleep } from '@headroom/testing'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from './helpers.js'

// What a client sees of each error the pool raises to a request, serialised by Fastify's
// default error handler: the status, the code and a message, never a host, a port, SQL,
// a SQLSTATE or the server's message. The cause stays on the error, for the logs.
const INTERNALS = /127\.0\.0\.1|localhost|:\d{4,5}\b|ECONN|\b\d{2}[0-9A-Z]{3}\b|select|insert|pg_sleep|users|duplicate|syntax|violates|constraint|key|terminat|secret@|SELEKT/i

function captureErrors (app: FastifyInstance): Error[] {
  const seen: Error[] = []
  app.addHook('onError', (_request, _reply, err, done) => {
    seen.push(err)
    done()
  })
  return seen
}

function clean (t: Test, res: LightMyRequestResponse, status: number, code: string, message: RegExp): void {
  t.equal(res.statusCode, status, `${code}: status`)
  const body = res.json()
  t.equal(body.code, code)
  t.match(body.message, message)
  t.notMatch(res.body, INTERNALS, `${code}: no host, port, SQL, SQLSTATE or server message in the body`)
  if (status === 503) t.equal(res.headers['retry-after'], '1', `${code}: Retry-After`)
}

t.test('a stopped private PostgreSQL (primary and replica): 503 HEADROOM_POOL_UNAVAILABLE with no address; the cause kept', async (t) => {
  const pg = await startPostgres(t)
  const deadReplica = `postgres://postgres@127.0.0.1:${await freePort()}/postgres`
  let seen: Error[] = []
  const { app } = await build(t, { primary: pg.url, replicas: [deadReplica], min: 0, acquireTimeoutMs: 3000, replicaCheckIntervalMs: 100 }, (app) => {
    seen = captureErrors(app)
    app.get('/write', async () => (await app.db.query('SELECT 1 AS one')).rows)
    app.get('/read', async () => (await app.db.read('SELECT 1 AS one')).rows)
  })
  await pg.stop()
  clean(t, await app.inject('/write'), 503, 'HEADROOM_POOL_UNAVAILABLE', /^The database \(primary\) is temporarily unavailable$/)
  // a replica's trouble never reaches a request: the read falls back to the primary, whose error it gets
  clean(t, await app.inject('/read'), 503, 'HEADROOM_POOL_UNAVAILABLE', /\(primary\)/)
  t.ok(seen.length >= 2 && seen.every((e) => e.cause !== undefined), 'the driver error stays on the error as its cause')
  t.match(String((seen[0]!.cause as Error).message), /ECONNREFUSED|connect|terminat/i, 'and says what happened, for the logs')
})

t.test('exhausted, acquire timeout, statement timeout, statement errors: status and code, nothing of the server', async (t) => {
  const { url } = await isolatedSchema(t)
  let seen: Error[] = []
  const { app } = await build(t, { primary: url, min: 1, max: 1, maxWaiting: 1, acquireTimeoutMs: 300, statementTimeoutMs: 200 }, (app) => {
    seen = captureErrors(app)
    app.get('/hold', async () => (await app.db.query('SELECT pg_sleep(0.15)')).rowCount)
    app.get('/quick', async () => (await app.db.query('SELECT 1 AS one')).rows)
    app.get('/slow', async () => (await app.db.query('SELECT pg_sleep(2)')).rowCount)
    app.get('/dup', async () => (await app.db.query('INSERT INTO users VALUES ($1)', ['secret@example.com'])).rowCount)
    app.get('/typo', async () => (await app.db.query('SELEKT 1')).rowCount)
    app.get('/tx-own-error', async () => app.db.transaction(async (tx) => {
      await tx.query('SELECT 1')
      throw Object.assign(new Error('insufficient funds'), { statusCode: 422 })
    }))
  })
  await app.db.query('CREATE TABLE users (email text PRIMARY KEY)')
  await app.db.query('INSERT INTO users VALUES ($1)', ['secret@example.com'])

  clean(t, await app.inject('/slow'), 503, 'HEADROOM_POOL_STATEMENT_TIMEOUT', /statement_timeout \(200 ms\)/)
  t.match(seen.at(-1), { query: /pg_sleep/, cause: { code: '57014' } }, 'the statement and the server error stay on the error')

  clean(t, await app.inject('/dup'), 500, 'HEADROOM_POOL_QUERY_FAILED', /^A database statement failed$/)
  t.match(seen.at(-1), { sqlState: '23505', constraint: 'users_pkey', cause: { message: /duplicate key/ } }, 'SQLSTATE, constraint and server message on the error')
  clean(t, await app.inject('/typo'), 500, 'HEADROOM_POOL_QUERY_FAILED', /^A database statement failed$/)
  t.match(seen.at(-1), { sqlState: '42601' })

  // the app's own error thrown inside a transaction is rolled back and handed back as is, not as a database outage
  const own = await app.inject('/tx-own-error')
  t.same([own.statusCode, own.json().message], [422, 'insufficient funds'])

  // one connection, one waiting slot: held by /hold, then /hold again waits, the third is refused at once
  const held = app.inject('/hold')
  await sleep(30)
  const waiting = app.inject('/hold')
  await sleep(30)
  clean(t, await app.inject('/quick'), 503, 'HEADROOM_POOL_EXHAUSTED', /exhausted/)
  await Promise.all([held, waiting])

  // a connection held longer than acquireTimeoutMs: the waiter gives up
  const client = await app.db.connect()
  clean(t, await app.inject('/quick'), 503, 'HEADROOM_POOL_ACQUIRE_TIMEOUT', /acquireTimeoutMs \(300 ms\)/)
  client.release()
})
