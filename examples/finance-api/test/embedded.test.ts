import t from 'tap'
import { loadConfig } from '../src/config.js'
import { start } from '../src/server.js'
import { Client } from './helpers.js'

t.test('with no DATABASE_URL and no REDIS_URL the server boots on PGlite and serves signup, login and the summary', async (t) => {
  // exactly what `pnpm start` sees on a fresh machine, but a free port
  const config = loadConfig({ PORT: '0', LOG_LEVEL: 'silent' })
  t.equal(config.databaseUrl, undefined)
  t.same(config.redis, { sessions: undefined, cache: undefined })
  const lines: string[] = []
  const running = await start(config, { logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => running.close())
  const said = lines.filter((l) => l.includes('embedded mode'))
  t.equal(said.length, 1, 'one log line says it runs embedded')
  t.match(said[0], /PGlite.*in-memory sessions, rate limits and cache.*DATABASE_URL.*REDIS_URL/, 'and how to switch')

  const visitor = new Client(running.url)
  const signup = await visitor.signup('newcomer@example.com', 'a long password')
  t.equal(signup.status, 201, 'signed up')

  const client = new Client(running.url)
  t.equal((await client.get('/api/summary')).status, 401, 'no summary before login')
  const login = await client.login('newcomer@example.com', 'a long password')
  t.equal(login.status, 200)
  const summary = await client.get('/api/summary')
  t.equal(summary.status, 200)
  t.equal(summary.body.accounts.length, 1, 'signup opened a checking account')
  t.equal(summary.body.netWorthCents, 0)

  const tx = await client.post('/api/transactions', { accountId: summary.body.accounts[0].id, amountCents: 250000, category: 'salary' })
  t.equal(tx.status, 201)
  t.equal((await client.get('/api/summary')).body.netWorthCents, 250000)

  // the in-memory session store keeps the per-user index too
  const cookie = client.cookie
  const ended = await visitor.post('/api/auth/logout-everywhere')
  t.equal(ended.body.sessionsEnded, 2)
  client.cookie = cookie
  t.equal((await client.get('/api/summary')).status, 401, 'the other session ended too')
})
