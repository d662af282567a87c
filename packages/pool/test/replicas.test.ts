import t from 'tap'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { getHub } from '@headroom/core'
import { sleep, startPostgres, startReplica, waitFor } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import { parseLsn } from '../src/lsn.js'
import { build } from './helpers.js'

function counter (text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

function routes (app: FastifyInstance): void {
  // a session store as @fastify/session exposes one: get/set on request.session
  const sessions = new Map<string, Map<string, unknown>>()
  // typed loosely: in a whole-repo typecheck @fastify/session's augmentation of FastifyRequest is in scope
  const sessionKey: string = 'session'
  app.decorateRequest(sessionKey, null)
  app.addHook('onRequest', async (request) => {
    const sid = String(request.headers['x-session'] ?? '')
    if (sid === '') return
    if (!sessions.has(sid)) sessions.set(sid, new Map())
    const data = sessions.get(sid)!
    ;(request as unknown as { session: unknown }).session = { get: (k: string) => data.get(k), set: (k: string, v: unknown) => { data.set(k, v) } }
  })
  app.post<{ Params: { v: string } }>('/items/:v', async (request) => {
    await request.db.query('INSERT INTO items VALUES ($1)', [Number(request.params.v)])
    return { token: request.db.consistencyToken }
  })
  app.get<{ Params: { v: string } }>('/items/:v', async (request, reply) => {
    const token = request.headers['x-consistency-token']
    if (typeof token === 'string') request.db.after(token)
    const { rows } = await request.db.read<{ v: number, replica: boolean }>('SELECT v, pg_is_in_recovery() AS replica FROM items WHERE v = $1', [Number(request.params.v)])
    if (rows.length === 0) return reply.code(404).send({ missing: request.params.v })
    return rows[0]
  })
  // as @fastify/session's regenerate() does: a new session object replaces request.session mid-request
  app.post<{ Params: { v: string } }>('/regenerated/:v', async (request) => {
    const v = Number(request.params.v)
    await request.db.query('INSERT INTO items VALUES ($1)', [v])
    const fresh = new Map<string, unknown>()
    sessions.set(`regenerated-${v}`, fresh)
    ;(request as unknown as { session: unknown }).session = { get: (k: string) => fresh.get(k), set: (k: string, val: unknown) => { fresh.set(k, val) } }
    await request.db.query('INSERT INTO items VALUES ($1)', [-v])
    return { token: request.db.consistencyToken, inNewSession: fresh.get('headroomPoolLsn') }
  })
  app.post<{ Params: { v: string } }>('/within/:v', async (request) => {
    const v = Number(request.params.v)
    await request.db.transaction(async (tx) => { await tx.query('INSERT INTO items VALUES ($1)', [v]) })
    const { rows } = await request.db.read<{ replica: boolean }>('SELECT pg_is_in_recovery() AS replica FROM items WHERE v = $1', [v])
    return { found: rows.length, replica: rows[0]?.replica }
  })
}

t.test('a private primary with a real streaming replica', async (t) => {
  const primary = await startPostgres(t)
  const replica = await startReplica(t, primary)
  await primary.query('CREATE TABLE items (v int PRIMARY KEY)')
  await replica.caughtUp()
  const { app, logs } = await build(t, {
    primary: primary.url,
    replicas: [replica.url],
    min: 2,
    replicaCheckIntervalMs: 100,
    maxReplicaLagMs: 1000
  }, routes)
  const hub = getHub(app)
  const replicaCheck = hub.checks().find((c) => c.name === 'postgres:replica:0')!
  t.equal(replicaCheck.critical, false, 'postgres:replica:0 is not critical')
  t.equal((await replicaCheck.check()).status, 'pass')

  t.test('reads run on the replica; writes and transactions on the primary', async (t) => {
    t.equal((await app.db.read<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, true, 'read: replica')
    t.equal((await app.db.query<{ r: boolean }>('INSERT INTO items VALUES (-1) RETURNING pg_is_in_recovery() AS r')).rows[0]!.r, false, 'write: primary')
    t.equal((await app.db.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false, 'query(): primary')
    t.equal(await app.db.transaction(async (tx) => (await tx.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r), false, 'transaction: primary')
    const session = app.db.session()
    await session.query('INSERT INTO items VALUES (-3)')
    const token = session.consistencyToken!
    t.match(token, /^[0-9A-F]+\/[0-9A-F]+$/, 'the token is an LSN')
    t.equal((await app.db.read('SELECT 1 FROM items WHERE v = -3', [], { after: token })).rowCount, 1, 'fastify.db.read({ after: token }) sees the write')
    t.equal((await app.db.session(token).read('SELECT 1 FROM items WHERE v = -3')).rowCount, 1, 'so does a session started from the token')
    const spread = await Promise.all(Array.from({ length: 20 }, () => app.db.read<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')))
    t.ok(spread.every((res) => res.rows[0]!.r), 'every plain read went to the healthy replica')
  })

  t.test('a write after the session object was replaced (regenerate) stores its token in the new session', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/regenerated/7001', headers: { 'x-session': 'before-regenerate' } })
    const body = res.json() as { token: string, inNewSession: unknown }
    t.equal(body.inNewSession, body.token, 'the new session holds the token of the last write')
  })

  t.test('1,000 write-then-read sequences across requests (token carried by the app) read their own write every time', async (t) => {
    let seen = 0
    let onReplica = 0
    // ten clients at a time, each one's sequences strictly in order
    await Promise.all(Array.from({ length: 10 }, async (_, c) => {
      for (let v = c * 100 + 1; v <= c * 100 + 100; v++) {
        const write = await app.inject({ method: 'POST', url: `/items/${v}` })
        const token = write.json<{ token: string }>().token
        const read = await app.inject({ url: `/items/${v}`, headers: { 'x-consistency-token': token } })
        if (read.statusCode === 200) seen++
        if (read.json<{ replica?: boolean }>().replica === true) onReplica++
      }
    }))
    t.equal(seen, 1000, `every read saw its write (${onReplica} of them on the replica, once it had replayed the write)`)
  })

  t.test('1,000 write-then-read sequences within a request read their own write every time', async (t) => {
    let seen = 0
    await Promise.all(Array.from({ length: 10 }, async (_, c) => {
      for (let v = 1001 + c * 100; v <= 1000 + c * 100 + 100; v++) {
        const res = await app.inject({ method: 'POST', url: `/within/${v}` })
        if (res.json<{ found: number }>().found === 1) seen++
      }
    }))
    t.equal(seen, 1000)
  })

  t.test('across requests of one session: request.db keeps the token in request.session', async (t) => {
    let seen = 0
    for (let v = 2001; v <= 2100; v++) {
      await app.inject({ method: 'POST', url: `/items/${v}`, headers: { 'x-session': 's1' } })
      const read = await app.inject({ url: `/items/${v}`, headers: { 'x-session': 's1' } })
      if (read.statusCode === 200) seen++
    }
    t.equal(seen, 100)
    const bad = await app.inject({ url: '/items/1', headers: { 'x-consistency-token': 'not-an-lsn' } })
    t.equal(bad.statusCode, 400, 'a malformed token is a 400, not a 500')
    t.equal(bad.json().code, 'HEADROOM_POOL_INVALID_TOKEN')
  })

  // The other read-your-writes tests pass whenever the replica replays fast enough; this one cannot:
  // the replica's replay is paused, so it provably lacks the write, and only the LSN gate keeps the read off it.
  t.test('replay paused: a read after the session\'s write goes to the primary and sees it; a read without the token goes to the replica and does not', async (t) => {
    // its own app, whose lag bound does not eject the paused replica during the test
    const { app: paused } = await build(t, { primary: primary.url, replicas: [replica.url], replicaCheckIntervalMs: 100, maxReplicaLagMs: 600_000 }, routes)
    await waitFor('the replica admitted', async () => paused.db.replicaStatus()[0]!.up, 10_000)
    t.teardown(() => replica.query('SELECT pg_wal_replay_resume()').catch(() => {}))
    await replica.query('SELECT pg_wal_replay_pause()')
    await waitFor('replay paused', async () => (await replica.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s')).rows[0]!.s === 'paused', 10_000)

    const session = paused.db.session()
    await session.query('INSERT INTO items VALUES (9001)')
    const token = session.consistencyToken!
    const replayed = (await replica.query<{ lsn: string }>('SELECT pg_last_wal_replay_lsn()::text AS lsn')).rows[0]!.lsn
    t.ok(parseLsn(replayed)! < parseLsn(token)!, `the replica is behind: replayed ${replayed}, the write is at ${token}`)
    t.equal((await replica.query('SELECT 1 FROM items WHERE v = 9001')).rowCount, 0, 'the replica does not have the write')

    const probe = 'SELECT pg_is_in_recovery() AS replica, EXISTS (SELECT 1 FROM items WHERE v = 9001) AS seen'
    t.same((await session.read<{ replica: boolean, seen: boolean }>(probe)).rows[0], { replica: false, seen: true }, 'the session\'s read: primary, sees its write')
    t.same((await paused.db.read<{ replica: boolean, seen: boolean }>(probe, [], { after: token })).rows[0], { replica: false, seen: true }, 'read({ after: token }): the same')
    t.same((await paused.db.read<{ replica: boolean, seen: boolean }>(probe)).rows[0], { replica: true, seen: false }, 'a read without the token: the replica, without the write')
    const withToken = await paused.inject({ url: '/items/9001', headers: { 'x-consistency-token': token } })
    t.same([withToken.statusCode, withToken.json()], [200, { v: 9001, replica: false }], 'over HTTP with the token: found, on the primary')
    t.equal((await paused.inject({ url: '/items/9001' })).statusCode, 404, 'over HTTP without it: the replica, not found')

    await replica.query('SELECT pg_wal_replay_resume()')
    await replica.caughtUp()
    t.same((await paused.db.read<{ replica: boolean, seen: boolean }>(probe, [], { after: token })).rows[0], { replica: true, seen: true }, 'once replayed, the token\'s read goes to the replica')
  })

  t.test('the replica stopped mid-run: reads keep succeeding from the primary with zero errors; re-admitted after it comes back', async (t) => {
    const load = { running: true }
    let errors = 0
    let reads = 0
    const where: boolean[] = []
    const worker = async () => {
      while (load.running) {
        await yieldToLoop()
        try {
          const { rows } = await app.db.read<{ r: boolean, n: string }>('SELECT pg_is_in_recovery() AS r, count(*) AS n FROM items')
          where.push(rows[0]!.r)
          reads++
        } catch (err) {
          errors++
          t.error(err)
        }
      }
    }
    const workers = Array.from({ length: 4 }, worker)
    await sleep(300)
    await replica.stop()
    await waitFor('the replica to be ejected', async () => !app.db.replicaStatus()[0]!.up, 5000)
    const check = await replicaCheck.check()
    t.equal(check.status, 'warn', 'postgres:replica:0 reports warn while ejected')
    t.match(check.output, /ejected/)
    const mark = where.length
    await sleep(500)
    t.ok(where.slice(mark).length > 0 && where.slice(mark).every((r) => !r), 'reads served by the primary meanwhile')
    const restarted = Date.now()
    await replica.start()
    t.comment(`replica restarted in ${Date.now() - restarted} ms`)
    await waitFor('the replica to be re-admitted', async () => app.db.replicaStatus()[0]!.up, 15_000)
    t.comment(`re-admitted ${Date.now() - restarted} ms after the restart began`)
    const back = where.length
    await sleep(300)
    load.running = false
    await Promise.all(workers)
    t.equal(errors, 0, `zero errors in ${reads} reads`)
    t.ok(where.slice(back).some((r) => r), 'reads go to the replica again')
    t.equal((await replicaCheck.check()).status, 'pass')
    t.ok(logs.some((l) => /replica ejected/.test(l.msg)) && logs.some((l) => /replica admitted/.test(l.msg)), 'ejection and re-admission are logged')
  })

  t.test('a replica lagging past maxReplicaLagMs is ejected, and re-admitted once it catches up', async (t) => {
    await replica.query('SELECT pg_wal_replay_pause()')
    await app.db.query('INSERT INTO items VALUES (-2)')
    await waitFor('the lagging replica to be ejected', async () => !app.db.replicaStatus()[0]!.up, 10_000)
    const text = await hub.registry.metrics()
    t.ok(counter(text, 'headroom_pool_replica_ejections_total', 'reason="lag"') >= 1, 'ejected for lag')
    t.match((await replicaCheck.check()).output, /maxReplicaLagMs/)
    t.equal((await app.db.read<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false, 'reads fall back to the primary without an error')
    await replica.query('SELECT pg_wal_replay_resume()')
    await waitFor('the replica to be re-admitted', async () => app.db.replicaStatus()[0]!.up, 10_000)
    t.equal((await app.db.read<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, true)
  })

  t.test('metrics say where reads ran', async (t) => {
    const text = await hub.registry.metrics()
    t.ok(counter(text, 'headroom_pool_reads_total', 'target="replica"') > 0)
    t.match(text, /headroom_pool_replica_up\{pool="replica:0"\} 1/)
    t.match(text, /headroom_pool_connections\{pool="replica:0",state="total"\}/)
  })
})
