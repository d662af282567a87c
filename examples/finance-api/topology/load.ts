import type { IncomingHttpHeaders } from 'node:http'
import { Agent, request } from 'node:https'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: unknown
  /** 0 with `error` when no HTTP answer came (connection refused or reset, timeout) */
  error?: string
  /** set when the first attempt's reused connection was closed under it (the error it got) */
  resent?: string
}

/**
 * One browser: its own source address on loopback (127.0.x.y, so nginx and
 * the app see distinct clients, as behind a real edge), keep-alive
 * connections to nginx over TLS, a cookie jar and the CSRF token.
 */
export class HttpClient {
  readonly #base: string
  readonly #agent: Agent
  readonly cookies = new Map<string, string>()
  csrf: string | undefined

  readonly #ca: string
  readonly #localAddress: string

  constructor (base: string, ca: string, localAddress: string) {
    this.#base = base
    this.#ca = ca
    this.#localAddress = localAddress
    this.#agent = new Agent({ keepAlive: true, maxSockets: 4, ca, localAddress })
  }

  /**
   * One request. Like a browser (Chromium's ShouldResendRequest), a request
   * whose reused keep-alive connection turned out to be closed before any
   * answer came is sent once more on a fresh connection: nginx closes idle
   * client connections when it reloads, and that race is the client's to
   * absorb. Such resends are counted (`resent`), and the writes' exactly-once
   * check would see one that had been applied twice.
   */
  async send (method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}, timeoutMs = 20_000): Promise<Reply> {
    const first = await this.#send(method, path, body, extraHeaders, timeoutMs, this.#agent)
    if (first.reusedAndClosed !== true) return first
    // on a new connection: the agent's other idle ones may have been closed by the same reload
    const again = await this.#send(method, path, body, extraHeaders, timeoutMs, false)
    return { ...again, resent: first.error }
  }

  #send (method: string, path: string, body: unknown, extraHeaders: Record<string, string>, timeoutMs: number, agent: Agent | false): Promise<Reply & { reusedAndClosed?: boolean }> {
    const headers: Record<string, string> = { ...extraHeaders }
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    let payload: string | undefined
    if (body !== undefined) {
      payload = JSON.stringify(body)
      headers['content-type'] = 'application/json'
    }
    if (method !== 'GET' && this.csrf !== undefined) headers['x-csrf-token'] = this.csrf
    return new Promise((resolve) => {
      const fresh = agent === false ? { ca: this.#ca, localAddress: this.#localAddress } : {}
      const req = request(this.#base + path, { method, headers, agent, timeout: timeoutMs, ...fresh }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.once('error', (err) => resolve({ status: 0, headers: {}, body: undefined, error: err.message }))
        res.once('end', () => {
          for (const line of res.headers['set-cookie'] ?? []) {
            const [pair, ...attrs] = line.split(';')
            const eq = pair!.indexOf('=')
            const name = pair!.slice(0, eq).trim()
            const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || pair!.slice(eq + 1).trim() === ''
            if (expired) this.cookies.delete(name)
            else this.cookies.set(name, pair!.slice(eq + 1).trim())
          }
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed: unknown = text
          if ((res.headers['content-type'] ?? '').includes('json') && text !== '') {
            try { parsed = JSON.parse(text) } catch { /* keep the text */ }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed })
        })
      })
      req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      req.once('error', (err: NodeJS.ErrnoException) => {
        const closed = req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')
        resolve({ status: 0, headers: {}, body: undefined, error: err.message, reusedAndClosed: closed })
      })
      req.end(payload)
    })
  }

  close (): void { this.#agent.destroy() }
}

/** signups whose next read missed the account they created (see User.signup) */
export const staleAfterSignup = { count: 0 }
/** sessions unknown on the next request right after signup: the user logged in again (see User.signup) */
export const setupSessionsLost = { count: 0 }

export class User {
  readonly index: number
  readonly email: string
  readonly password = 'topology-password-123'
  readonly client: HttpClient
  accountId = ''
  loggedIn = false
  #relogin: Promise<void> | null = null

  constructor (index: number, email: string, client: HttpClient) {
    this.index = index
    this.email = email
    this.client = client
  }

  async signup (): Promise<void> {
    const r = await this.client.send('POST', '/api/auth/signup', { email: this.email, password: this.password, name: `User ${this.index}` })
    if (r.status !== 201) throw new Error(`signup of ${this.email}: ${r.status} ${r.error ?? JSON.stringify(r.body)}`)
    this.client.csrf = (r.body as { csrfToken: string }).csrfToken
    // Read-your-writes across the session regenerate at signup: the account
    // made with the user must be in the first read, even from a replica (the
    // write position survives the regenerate). A miss is counted and fails
    // the run; the setup reads again so the scenarios can still run.
    for (let attempt = 0; ; attempt++) {
      const accounts = await this.client.send('GET', '/api/accounts')
      if (accounts.status === 401 && attempt < 20) {
        // the new session is not known to the instance that answered (its session store had fallen back to memory)
        setupSessionsLost.count++
        await this.login()
        continue
      }
      if (accounts.status !== 200) throw new Error(`accounts of ${this.email}: ${accounts.status}`)
      const first = (accounts.body as { items: Array<{ id: string }> }).items[0]
      if (first !== undefined) {
        this.accountId = first.id
        break
      }
      if (attempt === 0) staleAfterSignup.count++
      if (attempt === 20) throw new Error(`accounts of ${this.email}: still none after ${attempt} reads`)
      await sleep(50)
    }
    this.loggedIn = true
  }

  async login (): Promise<Reply> {
    const r = await this.client.send('POST', '/api/auth/login', { email: this.email, password: this.password })
    if (r.status === 200) {
      this.client.csrf = (r.body as { csrfToken: string }).csrfToken
      this.loggedIn = true
    }
    return r
  }

  /**
   * Between scenarios: the CSRF token of the session the cookie jar holds
   * now (a late answer can bring back an older session's cookie after a
   * re-login), or a login if that session is gone; so no scenario inherits
   * the previous one's damage.
   */
  async resync (): Promise<void> {
    const me = await this.client.send('GET', '/api/auth/me')
    if (me.status === 200) {
      this.client.csrf = (me.body as { csrfToken: string }).csrfToken
      this.loggedIn = true
    } else {
      this.relogin()
      await this.#relogin
    }
  }

  /** After a 401: log in again (once, however many requests saw the 401), retrying until it works. */
  relogin (): void {
    this.loggedIn = false
    this.#relogin ??= (async () => {
      for (let i = 0; i < 40 && !this.loggedIn; i++) {
        if ((await this.login()).status !== 200) await sleep(250)
      }
      this.#relogin = null
    })()
  }
}

export type Kind = 'read' | 'write' | 'asset'

export interface Sample {
  scenario: string
  kind: Kind
  method: string
  path: string
  user: number
  /** ms on the run's clock (performance.now()) */
  t0: number
  t1: number
  status: number
  error?: string
  retryAfter?: string
  /** the unique description of a write */
  description?: string
  /** sent twice by the client: its reused connection was closed before an answer (the first error) */
  resent?: string
}

export interface ForcedLogin { scenario: string, at: number, user: number, path: string }

interface Action { kind: Kind, method: string, path: string }

/** A dashboard's traffic: 25 % writes, reads of the summary, the transaction list, quotes and insights, a few static files. */
function pickAction (r: number): Action {
  if (r < 0.25) return { kind: 'write', method: 'POST', path: '/api/transactions' }
  if (r < 0.50) return { kind: 'read', method: 'GET', path: '/api/summary' }
  if (r < 0.68) return { kind: 'read', method: 'GET', path: '/api/transactions?limit=20' }
  if (r < 0.83) return { kind: 'read', method: 'GET', path: '/api/quotes?symbols=AAPL,MSFT' }
  if (r < 0.95) return { kind: 'read', method: 'GET', path: '/api/insights' }
  return { kind: 'asset', method: 'GET', path: '/assets/app.css' }
}

/**
 * An open-model load: requests start at a fixed rate whatever the answers
 * take (a slow server does not slow the arrivals, as with real users), each
 * from a random logged-in user. Bounded: it runs until stop(), and never
 * has more than `maxInFlight` requests outstanding (beyond that a tick is
 * counted as skipped, which would mean the run is not measuring what it says).
 */
export class Load {
  readonly samples: Sample[] = []
  readonly forcedLogins: ForcedLogin[] = []
  skipped = 0
  maxInFlightSeen = 0
  readonly #users: User[]
  readonly #rate: number
  readonly #maxInFlight: number
  readonly #inFlight = new Set<Promise<void>>()
  #stopping = false
  #loop: Promise<void> = Promise.resolve()
  #seq = 0

  constructor (users: User[], ratePerSecond: number, maxInFlight = 400) {
    this.#users = users
    this.#rate = ratePerSecond
    this.#maxInFlight = maxInFlight
  }

  start (scenario: string): void {
    this.#stopping = false
    this.#loop = this.#run(scenario)
  }

  /** Stops the arrivals and waits for every outstanding request. */
  async stop (): Promise<void> {
    this.#stopping = true
    await this.#loop
    await Promise.all(this.#inFlight)
  }

  async #run (scenario: string): Promise<void> {
    const interval = 1000 / this.#rate
    let next = performance.now()
    while (!this.#stopping) {
      const wait = next - performance.now()
      if (wait > 0) await sleep(wait)
      next += interval
      if (this.#stopping) break
      if (this.#inFlight.size >= this.#maxInFlight) {
        this.skipped++
        continue
      }
      const user = this.#pickUser()
      if (user === undefined) {
        this.skipped++
        continue
      }
      const p = this.#one(scenario, user).finally(() => this.#inFlight.delete(p))
      this.#inFlight.add(p)
      this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.#inFlight.size)
    }
  }

  #pickUser (): User | undefined {
    for (let i = 0; i < 10; i++) {
      const u = this.#users[Math.floor(Math.random() * this.#users.length)]!
      if (u.loggedIn) return u
    }
    return undefined
  }

  async #one (scenario: string, user: User): Promise<void> {
    const action = pickAction(Math.random())
    let body: unknown
    let description: string | undefined
    if (action.kind === 'write') {
      description = `topo:${scenario}:${user.index}:${++this.#seq}`
      body = { accountId: user.accountId, amountCents: -(1 + Math.floor(Math.random() * 5000)), category: 'topology', description }
    }
    const t0 = performance.now()
    const r = await user.client.send(action.method, action.path, body)
    const t1 = performance.now()
    const sample: Sample = { scenario, kind: action.kind, method: action.method, path: action.path.split('?')[0]!, user: user.index, t0, t1, status: r.status }
    if (r.error !== undefined) sample.error = r.error
    if (r.resent !== undefined) sample.resent = r.resent
    const retryAfter = r.headers['retry-after']
    if (retryAfter !== undefined) sample.retryAfter = String(retryAfter)
    if (description !== undefined) sample.description = description
    this.samples.push(sample)
    if (r.status === 401 && user.loggedIn && action.kind !== 'asset') {
      this.forcedLogins.push({ scenario, at: t1, user: user.index, path: sample.path })
      user.relogin()
    }
  }
}

export interface ProbeResult { ok: number, limited: number, edgeLimited: number, other: Record<string, number> }

/**
 * The shared rate limit, asked from one client across every instance: `count`
 * requests through nginx (round robin over the instances), paced below the
 * edge's flood limit so a 429 is the app's. Held when the app refused the
 * requests past the limit, however nginx spread them.
 */
export async function probeRateLimit (user: User, count: number, perSecond: number): Promise<ProbeResult> {
  const out: ProbeResult = { ok: 0, limited: 0, edgeLimited: 0, other: {} }
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    const due = start + i * 1000 / perSecond - performance.now()
    if (due > 0) await sleep(due)
    const r = await user.client.send('GET', '/api/auth/me')
    if (r.status === 200) out.ok++
    else if (r.status === 429 && typeof r.body === 'object') out.limited++
    else if (r.status === 429) out.edgeLimited++
    else out.other[String(r.status || r.error)] = (out.other[String(r.status || r.error)] ?? 0) + 1
  }
  return out
}
