import t from 'tap'
import { buildApp, login, me, redisClient } from './helpers.js'

// Busy is not down: a blocked event loop must not log anyone out. Timers run
// before sockets are read, so after a stall every session read in flight
// looked timed out, the store took Redis for down, and the users it had not
// seen got a fresh, anonymous session (401 in an app). The shared Redis is
// only read and written here; nothing stops or slows it.
const block = (ms: number) => { const until = performance.now() + ms; while (performance.now() < until); }

t.test('a stall of four command timeouts while reads are in flight logs nobody out and starts no fallback', async (t) => {
  const options = { keyPrefix: `busy-${process.pid}:`, commandTimeoutMs: 50 }
  // the users log in on another instance, so this one's memory cannot stand in for Redis
  const other = await buildApp(t, { ...options, redis: redisClient(t, 'redis://127.0.0.1:6379') })
  const app = await buildApp(t, { ...options, redis: redisClient(t, 'redis://127.0.0.1:6379') })
  app.get('/stall', async () => { block(200); return { ok: true } })

  const users = Array.from({ length: 20 }, (_v, i) => `user-${i}`)
  const cookies = await Promise.all(users.map(async (u) => login(other, u)))
  // each round: reads go out, then one request blocks the loop past their timeout
  for (let round = 0; round < 5; round++) {
    const reads = cookies.map(async (cookie) => me(app, cookie))
    const stall = app.inject('/stall')
    const answers = await Promise.all(reads)
    await stall
    const lost = answers.filter((a, i) => a.body.userId !== users[i])
    t.equal(lost.length, 0, `round ${round}: every user still logged in (${lost.length} of ${users.length} lost)`)
    t.equal(app.sessions.fallbackActive, false, `round ${round}: the store did not fall back to memory`)
  }
})
