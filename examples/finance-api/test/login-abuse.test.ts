import t, { type Test } from 'tap'
import { isolatedRedis, isolatedSchema } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { POLICY } from '../src/login-guard.js'
import { migrate } from '../src/migrate.js'
import { HashGate } from '../src/passwords.js'

const PASSWORD = 'correct horse battery'
const WINDOW_S = 600

/** Counts the hashes it runs and the most it ever ran at once. */
class WatchedGate extends HashGate {
  started = 0
  maxInFlight = 0
  override run<T> (hash: () => Promise<T>): Promise<T | undefined> {
    return super.run(() => {
      this.started++
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
      return hash()
    })
  }
}

async function appWith (t: Test, env: Record<string, string> = {}, gate = new WatchedGate(8)) {
  const { url } = await isolatedSchema(t)
  const redis = await isolatedRedis(t)
  await migrate(url)
  const app = await buildApp({
    config: loadConfig({
      DATABASE_URL: url,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redis.prefix,
      LOG_LEVEL: 'silent',
      // the per-request policy out of the way: these tests are about the failure counters
      LOGIN_RATE_LIMIT_MAX: '1000',
      LOGIN_FAILURE_WINDOW_MS: String(WINDOW_S * 1000),
      LOGIN_PAIR_FAILURES_MAX: '3',
      LOGIN_ACCOUNT_FAILURES_MAX: '5',
      LOGIN_ADDRESS_FAILURES_MAX: '8',
      ...env
    }),
    databaseUrl: url,
    hashGate: gate
  })
  t.teardown(() => app.close())
  await app.ready()
  return { app, gate }
}

const login = (app: FastifyInstance, from: string, email: string, password = 'wrong password!') =>
  app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: from, payload: { email, password } })
const signup = (app: FastifyInstance, from: string, email: string) =>
  app.inject({ method: 'POST', url: '/api/auth/signup', remoteAddress: from, payload: { email, password: PASSWORD, name: 'Owner' } })

function throttled (t: Test, res: Awaited<ReturnType<typeof login>>, what: string) {
  t.equal(res.statusCode, 429, `${what}: 429`)
  const retry = Number(res.headers['retry-after'])
  t.ok(retry >= 1 && retry <= WINDOW_S, `${what}: Retry-After ${retry} s, within the ${WINDOW_S} s window`)
  t.equal(res.json().code, 'FINANCE_LOGIN_THROTTLED')
}

t.test('per account, across addresses: the attacker is stopped, the owner is not locked out', async (t) => {
  const { app, gate } = await appWith(t)
  t.equal((await signup(app, '10.9.0.1', 'owner@example.com')).statusCode, 201)
  t.equal((await login(app, '10.0.0.1', 'owner@example.com', PASSWORD)).statusCode, 200, 'the owner logs in from home once')

  // five failures from five addresses: each address alone is far from its own limits
  for (let i = 1; i <= 5; i++) t.equal((await login(app, `10.1.0.${i}`, 'OWNER@example.com')).statusCode, 401, `failure ${i} from 10.1.0.${i}`)
  const hashes = gate.started
  throttled(t, await login(app, '10.1.0.6', 'owner@example.com'), 'a sixth address, wrong password')
  throttled(t, await login(app, '10.2.0.1', 'owner@example.com', PASSWORD), 'a new address even with the right password')
  t.equal(gate.started, hashes, 'a refused attempt costs no password hash')

  // the owner, from an address that has logged into the account
  t.equal((await login(app, '10.0.0.1', 'owner@example.com', PASSWORD)).statusCode, 200, 'owner: still logs in during the attack')
  t.equal((await login(app, '10.0.0.1', 'owner@example.com')).statusCode, 401, 'owner typo: 401, not locked')
  t.equal((await login(app, '10.0.0.1', 'owner@example.com', PASSWORD)).statusCode, 200, 'and logs in after it')
  throttled(t, await login(app, '10.1.0.7', 'owner@example.com'), 'the owner\'s success did not clear the account\'s failures for others')
})

t.test('per address across emails, and per IPv6 /64', async (t) => {
  const { app } = await appWith(t)
  t.equal((await signup(app, '10.9.0.2', 'victim@example.com')).statusCode, 201)
  for (let i = 1; i <= 8; i++) t.equal((await login(app, '10.3.0.1', `user${i}@example.com`)).statusCode, 401, `email ${i}`)
  throttled(t, await login(app, '10.3.0.1', 'user9@example.com'), 'a ninth email from the same address')
  throttled(t, await login(app, '10.3.0.1', 'victim@example.com', PASSWORD), 'even a right password from that address')
  t.equal((await login(app, '10.3.0.2', 'victim@example.com', PASSWORD)).statusCode, 200, 'the next address is not affected')

  for (let i = 1; i <= 8; i++) t.equal((await login(app, `2001:db8:aa:bb::${i}`, `v6user${i}@example.com`)).statusCode, 401, `IPv6 address ${i} of one /64`)
  throttled(t, await login(app, '2001:db8:aa:bb:ffff::1', 'v6user9@example.com'), 'another address of the same /64')
  t.equal((await login(app, '2001:db8:aa:cc::1', 'v6user9@example.com')).statusCode, 401, 'another /64 has its own counter')
})

t.test('a successful login clears the (address, account) failures, and only those', async (t) => {
  const { app } = await appWith(t)
  t.equal((await signup(app, '10.9.0.3', 'b@example.com')).statusCode, 201)
  const from = '10.4.0.1'
  t.equal((await login(app, from, 'b@example.com')).statusCode, 401)
  t.equal((await login(app, from, 'b@example.com')).statusCode, 401)
  t.equal((await login(app, from, 'b@example.com', PASSWORD)).statusCode, 200, 'two failures, then the right password')
  t.equal((await login(app, from, 'b@example.com')).statusCode, 401)
  t.equal((await login(app, from, 'b@example.com')).statusCode, 401)
  t.equal((await login(app, from, 'b@example.com')).statusCode, 401, 'three failures since the success: the pair limit (3) is reached only now')
  const res = await login(app, from, 'b@example.com', PASSWORD)
  throttled(t, res, 'a fourth attempt from that address at that account')
  t.match(res.json().message, /for this account from this network/)
  const rl = app.headroomRateLimit
  t.equal((await rl.peek(POLICY.address, 'ip:10.4.0.1')).count, 5, 'the address keeps all five failures (the success cleared none)')
  t.equal((await rl.peek(POLICY.account, 'a:b@example.com')).count, 5, 'the account keeps all five failures')
})

t.test('signup: per address and per IPv6 /64', async (t) => {
  const { app } = await appWith(t, { SIGNUP_ADDRESS_MAX: '3' })
  for (let i = 1; i <= 3; i++) t.equal((await signup(app, '10.5.0.1', `s${i}@example.com`)).statusCode, 201, `signup ${i}`)
  const res = await signup(app, '10.5.0.1', 's4@example.com')
  t.equal(res.statusCode, 429, 'a fourth signup from the address')
  t.ok(Number(res.headers['retry-after']) <= WINDOW_S, `Retry-After ${String(res.headers['retry-after'])} s`)
  t.equal(res.json().code, 'FINANCE_SIGNUP_THROTTLED')
  for (let i = 1; i <= 3; i++) t.equal((await signup(app, `2001:db8:5:5::${i}`, `v6s${i}@example.com`)).statusCode, 201)
  t.equal((await signup(app, '2001:db8:5:5:abcd::1', 'v6s4@example.com')).statusCode, 429, 'the same /64')
  t.equal((await signup(app, '10.5.0.2', 's4@example.com')).statusCode, 201, 'another address')
})

t.test('concurrent password hashing is bounded per instance: the excess gets 503 + Retry-After at once', async (t) => {
  const gate = new WatchedGate(2)
  const { app } = await appWith(t, { LOGIN_ADDRESS_FAILURES_MAX: '1000', LOGIN_ACCOUNT_FAILURES_MAX: '1000', LOGIN_PAIR_FAILURES_MAX: '1000' }, gate)
  t.equal((await signup(app, '10.9.0.4', 'c@example.com')).statusCode, 201)
  gate.maxInFlight = 0
  const start = performance.now()
  const timed = async (i: number) => {
    const res = await login(app, `10.6.${i >> 8}.${i & 255}`, 'c@example.com', i % 2 === 0 ? PASSWORD : 'wrong password!')
    return { status: res.statusCode, ms: performance.now() - start, retryAfter: res.headers['retry-after'], code: res.json().code }
  }
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => timed(i)))
  const busy = results.filter((r) => r.status === 503)
  const hashed = results.filter((r) => r.status === 200 || r.status === 401)
  t.equal(results.length, busy.length + hashed.length, `only 200, 401 and 503: ${[...new Set(results.map((r) => r.status))].join(', ')}`)
  t.ok(gate.maxInFlight <= 2, `at most 2 hashes at once (saw ${gate.maxInFlight})`)
  t.ok(hashed.length >= 2, `${hashed.length} were hashed`)
  t.ok(busy.length >= 20, `${busy.length} of 40 refused with 503`)
  t.ok(busy.every((r) => r.retryAfter === '1' && r.code === 'FINANCE_BUSY'), '503 with Retry-After: 1 and a code')
  const slowestBusy = Math.max(...busy.map((r) => r.ms))
  const slowestHashed = Math.max(...hashed.map((r) => r.ms))
  t.ok(slowestBusy < slowestHashed, `the 503s did not wait for a hash (slowest 503 ${slowestBusy.toFixed(0)} ms, slowest hashed ${slowestHashed.toFixed(0)} ms)`)

  // signup is behind the same bound
  gate.maxInFlight = 0
  const signups = await Promise.all(Array.from({ length: 20 }, (_, i) => signup(app, `10.7.0.${i}`, `burst${i}@example.com`)))
  const codes = signups.map((r) => r.statusCode)
  t.ok(gate.maxInFlight <= 2, `signups: at most 2 hashes at once (saw ${gate.maxInFlight})`)
  t.ok(codes.includes(503) && codes.includes(201) && codes.every((c) => c === 201 || c === 503), `signups: 201s and 503s only (${codes.join(',')})`)
})
