import { waitFor } from '@headroom/testing'
import t from 'tap'
import { privateBackend } from './backends.js'
import { buildApp, login, me } from './helpers.js'

// sessions.list() and sessions.destroyUser() need Redis: during an outage they answer a 503 the client can retry,
// and log-out-everywhere never reports success while a session of the user can still be used
t.test('list() and destroyUser() while Redis is down: 503 + Retry-After, no internals, this instance\'s sessions destroyed, never a false "done"', async (t) => {
  const b = await privateBackend(t)
  const options = { keyPrefix: b.prefix, commandTimeoutMs: 250, probeIntervalMs: 200 }
  const a = await buildApp(t, { redis: b.client(), ...options })
  const other = await buildApp(t, { redis: b.client(), ...options })

  const before = await login(a, 'alice')
  // a session only Redis and the other instance know of
  const elsewhere = await login(other, 'alice')
  t.equal((await a.inject({ method: 'GET', url: '/sessions/alice' })).json().length, 2)

  // SIGSTOP: Redis stops answering but keeps its data, so what survives the outage in Redis can be checked after it
  const pid = b.pid()
  if (pid === null) throw new Error('no redis-server pid')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  process.kill(pid, 'SIGSTOP')
  // the first request after the kill notices it (its command fails), then every session of `a` is in memory
  await me(a, before)
  const during = await login(a, 'alice')
  t.equal(a.sessions.fallbackActive, true)

  const listed = await a.inject({ method: 'GET', url: '/sessions/alice' })
  t.equal(listed.statusCode, 503, 'list: 503, not a partial list')
  t.equal(listed.headers['retry-after'], '1')
  t.equal(listed.json().code, 'HEADROOM_SESSION_UNAVAILABLE')
  t.match(listed.json().message, /temporarily unavailable: listing a user's sessions/)

  const res = await a.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: before } })
  t.equal(res.statusCode, 503, 'log out everywhere: 503, never a count while sessions may survive')
  t.equal(res.headers['retry-after'], '1')
  t.equal(res.json().code, 'HEADROOM_SESSION_UNAVAILABLE')
  t.match(res.json().message, /logging a user out everywhere/)
  for (const r of [listed, res]) {
    t.notMatch(r.body, /127\.0\.0\.1|localhost|:\d{4,5}|ECONN|NODE_DOWN|CONNECTION_LOST|NOT_READY|timeout|Redis/i, 'no address, port or Redis error in the body')
  }
  const err = await a.sessions.destroyUser('alice').then(() => null, (e: Error) => e)
  t.ok(err?.cause, 'the Redis error stays on the error, for the logs')

  // what this instance holds is destroyed now, whether it was read from Redis or written during the outage
  t.equal((await me(a, before)).body.userId, null, 'a session this instance read before the outage is logged out here')
  t.equal((await me(a, during)).body.userId, null, 'a session written during the outage is logged out')

  process.kill(pid, 'SIGCONT')
  await waitFor('the store back on Redis', async () => { await me(a); return !a.sessions.fallbackActive }, 15_000, 100)
  // the 503 was honest: the session of the other instance survived in Redis
  t.equal((await me(other, elsewhere)).body.userId, 'alice', 'the other instance\'s session is still logged in: reporting success would have been false')
  // what was destroyed here during the outage was written back as deletes
  t.equal((await me(other, before)).body.userId, null, 'the session read before the outage stays destroyed once Redis is back')
  t.equal((await me(other, during)).body.userId, null)

  const retried = await a.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: elsewhere } })
  t.equal(retried.statusCode, 200, 'the retry after the outage succeeds')
  t.equal(retried.json().destroyed, 1)
  t.equal((await me(other, elsewhere)).body.userId, null)
  t.same((await a.inject({ method: 'GET', url: '/sessions/alice' })).json(), [])
})
