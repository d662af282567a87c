import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { Client } from './helpers.js'
import { describe, payloadOf, requests, type Actor, type FuzzRequest } from './fuzz-requests.js'
import { hostileApp } from './hostile.js'

/** FUZZ_REQUESTS (default 10,000) requests from FUZZ_SEED (default fixed): a failure names both, so it can be replayed. */
const COUNT = Number(process.env.FUZZ_REQUESTS ?? 10_000)
const SEED = Number(process.env.FUZZ_SEED ?? 20261201)
const PASSWORD = 'fuzz user password'
/** where anonymous and tampered requests come from (TEST-NET-3) */
const STRANGERS_ADDRESS = '203.0.113.7'

/** What only one user may ever see: strings no generator produces. */
const MARKERS = { A: 'mkA-7f3c1e', B: 'mkB-2d9a40' } as const

interface User {
  name: 'A' | 'B'
  email: string
  client: Client
  accounts: Set<string>
  /** transactions the user wrote (201s), to count afterwards */
  written: number
  /** ids of the transactions written at set-up, for edits */
  transactions: string[]
}

async function makeUser (app: FastifyInstance, name: 'A' | 'B'): Promise<User> {
  const email = `${MARKERS[name]}@example.com`
  const client = new Client(app)
  await client.signup(email, PASSWORD, `User ${MARKERS[name]}`)
  const accounts = new Set<string>([(await client.get('/api/accounts')).body.items[0].id])
  const vault = await client.post('/api/accounts', { name: `vault ${MARKERS[name]}`, kind: 'savings' })
  accounts.add(vault.body.id)
  const transactions: string[] = []
  for (let i = 0; i < 30; i++) {
    const occurredAt = new Date(Date.UTC(2026, 0, 1) - i * 86_400_000 * 7).toISOString()
    const written = await client.post('/api/transactions', { accountId: vault.body.id, amountCents: -(i + 1) * 100, category: `cat ${MARKERS[name]}`, description: `secret ${MARKERS[name]} ${i}`, occurredAt })
    transactions.push(written.body.id)
  }
  return { name, email, client, accounts, written: 30, transactions }
}

/** A copy of the cookie with one character of its signature changed. */
function tamper (cookie: string | undefined, at: number): string {
  if (!cookie) return 'sessionId=x'
  const i = cookie.length - 1 - (at % 10)
  return cookie.slice(0, i) + (cookie[i] === 'A' ? 'B' : 'A') + cookie.slice(i + 1)
}

/** Account ids a response lists as the actor's own. */
function listedAccountIds (url: string, body: any): string[] {
  if (url.startsWith('/api/accounts')) return (body?.items ?? []).map((a: { id: string }) => a.id)
  if (url.startsWith('/api/transactions')) return (body?.items ?? []).map((x: { accountId: string }) => x.accountId)
  if (url.startsWith('/api/summary')) return (body?.accounts ?? []).map((a: { id: string }) => a.id)
  return []
}

t.test(`property: ${COUNT} generated requests (seed ${SEED}) — no 5xx, no other user's data, healthy afterwards`, async (t) => {
  t.comment(`fuzz: seed=${SEED} requests=${COUNT} (FUZZ_SEED / FUZZ_REQUESTS to change them)`)
  const app = await hostileApp(t)
  const users = { A: await makeUser(app, 'A'), B: await makeUser(app, 'B') }
  const world = { accountsOf: { A: [...users.A.accounts], B: [...users.B.accounts] }, transactionsOf: { A: users.A.transactions, B: users.B.transactions } }
  const generated = fc.sample(requests(world), { seed: SEED, numRuns: COUNT })

  const statuses = new Map<number, number>()
  const failures: string[] = []
  let relogins = 0
  let edits = 0
  // one lane per actor, the lanes concurrent (PostgreSQL and Redis answer while Node works), each in its own order;
  // password hashing (login, signup) one at a time, so no hashing bound is ever what answers
  let hashing = Promise.resolve()
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = hashing.then(fn)
    hashing = run.then(() => {}, () => {})
    return run
  }
  const send = async (i: number, r: FuzzRequest) => {
    const user = r.actor === 'A' || r.actor === 'B' ? users[r.actor] : undefined
    const headers: Record<string, string> = {}
    const { payload, contentType } = payloadOf(r.body)
    if (contentType) headers['content-type'] = contentType
    if (user?.client.cookie) headers.cookie = user.client.cookie
    if (r.actor === 'tampered') headers.cookie = tamper(users[i % 2 ? 'A' : 'B'].client.cookie, i)
    if (r.cookie !== undefined) headers.cookie = r.cookie
    if (user && r.csrf !== 'none') headers['x-csrf-token'] = r.csrf === 'wrong' ? 'forged' : user.client.csrfToken ?? ''
    // strangers from an address of their own: their failed logins never count against the users' logins (per-address limits)
    const remoteAddress = user ? '127.0.0.1' : STRANGERS_ADDRESS
    const inject = () => app.inject({ method: r.method as 'GET', url: r.url, headers, remoteAddress, ...(payload === undefined ? {} : { payload }) })
    const res = /^\/api\/auth\/(login|signup)/.test(r.url) ? await serialized(inject) : await inject()
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (r.method === 'PATCH' && res.statusCode === 200) edits++

    const problems = check(r, res.statusCode, res.body, user)
    if (problems.length > 0 && failures.length < 20) failures.push(`#${i} ${describe(r)} → ${res.statusCode} ${res.body.slice(0, 300)}: ${problems.join('; ')}`)
    if (user && (res.statusCode === 401 || (r.url.startsWith('/api/auth/logout') && res.statusCode < 300))) {
      // the fuzzer logged this user out: log in again, as a person would
      relogins++
      if ((await serialized(() => user.client.login(user.email, PASSWORD))).status !== 200) failures.push(`#${i}: ${user.name} cannot log in again`)
    }
    if (user && r.method === 'POST' && res.statusCode === 201) {
      if (r.url === '/api/accounts') user.accounts.add(res.json().id)
      if (r.url === '/api/transactions') user.written++
    }
  }
  const started = performance.now()
  await Promise.all((['A', 'B', 'anonymous', 'tampered'] as const).map(async (actor) => {
    for (const [i, r] of generated.entries()) if (r.actor === actor) await send(i, r)
  }))
  const seconds = (performance.now() - started) / 1000
  t.comment(`fuzz: ${COUNT} requests in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}; ${relogins} logins again; ${edits} edits applied`)
  t.same(failures, [], `seed ${SEED}, ${COUNT} requests: no 5xx and no other user's data (replay with FUZZ_SEED=${SEED} FUZZ_REQUESTS=${COUNT})`)
  t.equal([...statuses.keys()].filter((s) => s >= 500).length, 0, 'no 5xx at all')

  /** the problems with one response, empty when it is fine */
  function check (r: FuzzRequest, status: number, body: string, user: User | undefined): string[] {
    const problems: string[] = []
    if (status >= 500) problems.push('a 5xx')
    const foreign = r.actor === 'A' ? [MARKERS.B] : r.actor === 'B' ? [MARKERS.A] : [MARKERS.A, MARKERS.B]
    for (const m of foreign) if (body.includes(m)) problems.push(`${actorName(r.actor)} received ${m}`)
    if (user && (status === 200 || status === 201)) {
      let parsed: unknown
      try { parsed = JSON.parse(body) } catch { parsed = undefined }
      const path = r.url.split('?')[0] ?? ''
      const ids = listedAccountIds(path, parsed)
      // a transaction written or edited: into one of the user's own accounts
      if ((r.method === 'POST' && path === '/api/transactions') || (r.method === 'PATCH' && path.startsWith('/api/transactions/'))) {
        ids.push((parsed as { accountId?: string } | undefined)?.accountId ?? '')
      }
      const theirs = ids.filter((id) => !user.accounts.has(id))
      if (theirs.length > 0) problems.push(`${user.name} was shown accounts ${theirs.join(',')}`)
    }
    return problems
  }

  // healthy afterwards: ready, and both users work as before
  await app.health.runChecks()
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200, `ready after the run: ${ready.body}`)
  for (const user of Object.values(users)) {
    const write = await user.client.post('/api/transactions', { accountId: [...user.accounts][0], amountCents: 100, category: 'after the storm' })
    t.equal(write.status, 201, `${user.name} can still write`)
    const summary = await user.client.get('/api/summary')
    t.equal(summary.status, 200, `${user.name} can still read`)
    t.match(JSON.stringify(summary.body), `vault ${MARKERS[user.name]}`, `${user.name} still sees their own data`)
    const counted = summary.body.accounts.reduce((n: number, a: { transactions: number }) => n + a.transactions, 0)
    t.equal(counted, user.written + 1, `${user.name} has exactly the transactions they wrote: none went to the other user`)
  }
})

function actorName (a: Actor): string {
  return a === 'A' || a === 'B' ? `user ${a}` : `an ${a} client`
}
