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

t.test('on PGlite (one session behind every connection) the prepared reads of concurrent requests all answer', async (t) => {
  const running = await start(loadConfig({ PORT: '0', LOG_LEVEL: 'silent' }))
  t.teardown(() => running.close())
  const client = new Client(running.url)
  t.equal((await client.signup('concurrent@example.com', 'a long password')).status, 201)
  const accountId = (await client.get('/api/accounts')).body.items[0].id as string
  t.equal((await client.post('/api/transactions', { accountId, amountCents: -1250, category: 'rent' })).status, 201)
  // several pool connections prepare the same statements at once: on a shared session the second Parse of a name is 42P05
  const pages = await Promise.all(Array.from({ length: 24 }, (_, i) => client.get(i % 2 === 0 ? '/api/transactions' : '/api/accounts')))
  t.same(pages.map((p) => p.status), pages.map(() => 200), 'no 5xx')
  t.equal(pages[0]!.body.items[0].amountCents, -1250)
})
