import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { testApp } from '@headroom/testing'
import { headroomHealth } from '../src/index.js'

function block (ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) { /* the event loop is blocked on purpose */ }
}

interface Hit { path: string, status: number, retryAfter?: string, code?: string }

/**
 * A client in another process (this one is blocked): from the moment it is
 * told to start, every 20 ms it requests the app route and the probes side
 * by side, for 3 s, and prints what it got.
 */
const CLIENT = `
import http from 'node:http'
const base = process.argv[1]
const paths = ['/work', '/health', '/health/ready', '/metrics']
const get = (path) => new Promise((resolve) => {
  http.get(base + path, { agent: false }, (res) => {
    let body = ''
    res.on('data', (c) => { body += c })
    res.on('end', () => {
      let code
      try { code = JSON.parse(body).code } catch {}
      resolve({ path, status: res.statusCode, retryAfter: res.headers['retry-after'], code })
    })
  }).on('error', (err) => resolve({ path, status: 0, code: err.code }))
})
process.stdout.write('ready\\n')
await new Promise((r) => setTimeout(r, 200))
const rounds = []
const end = Date.now() + 3000
while (Date.now() < end) {
  rounds.push(await Promise.all(paths.map(get)))
  await new Promise((r) => setTimeout(r, 20))
}
process.stdout.write(JSON.stringify(rounds) + '\\n')
`

t.test('the event loop blocked past the threshold: application routes 503 + Retry-After, /health 200', async (t) => {
  const app = testApp(t)
  await app.register(headroomHealth, {
    handleSignals: false,
    checkIntervalMs: 60_000,
    // a short sample so one long block dominates its mean
    pressure: { maxEventLoopDelayMs: 50, sampleIntervalMs: 200, retryAfterSeconds: 7 }
  })
  app.get('/work', async () => ({ ok: true }))
  const address = await app.listen({ port: 0, host: '127.0.0.1' })

  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT, address], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8')
  const started = new Promise<void>((resolve) => child.stdout.on('data', (chunk: string) => {
    out += chunk
    if (out.includes('ready\n')) resolve()
  }))
  await started
  // the client's first requests arrive while the loop is blocked
  block(1500)
  await once(child, 'exit')
  const rounds = JSON.parse(out.slice(out.indexOf('ready\n') + 6)) as Hit[][]

  const shedRounds = rounds.filter((r) => r[0]?.status === 503)
  t.ok(shedRounds.length > 0, `the app route was shed in ${shedRounds.length} of ${rounds.length} rounds`)
  for (const [work, health, , metrics] of shedRounds) {
    t.match(work, { status: 503, retryAfter: '7', code: 'HEADROOM_HEALTH_UNDER_PRESSURE' }, 'shed with Retry-After')
    t.equal(health?.status, 200, '/health answers 200 under pressure')
    t.equal(metrics?.status, 200, '/metrics is never shed')
  }
  // the same round can straddle a pressure sample, so readiness is asserted on any shed round
  t.ok(shedRounds.some((r) => r[2]?.status === 503), '/health/ready is 503 under pressure')
  t.ok(rounds.every((r) => r[1]?.status === 200), 'every /health request answered 200')
  t.ok(rounds.every((r) => r[3]?.status === 200), 'every /metrics request answered 200')
  t.equal(rounds.at(-1)?.[0]?.status, 200, 'the app route recovers once the loop is free')

  const metrics = await app.inject('/metrics')
  t.match(metrics.body, /headroom_health_shed_requests_total\{reason="eventLoopDelay"\} [1-9]/)
})
