import { LogController } from 'fastify'
import t from 'tap'
import { headroomHealth, shedReason } from '../src/index.js'
import { LogLines, sleep, testApp, type TestContext } from '@headroom/testing'

interface Hit { status: number, retryAfter: string | null, code?: string }

async function get (base: string, path: string): Promise<Hit> {
  const res = await fetch(base + path)
  const text = await res.text()
  let code: string | undefined
  try { code = (JSON.parse(text) as { code?: string }).code } catch {}
  return { status: res.status, retryAfter: res.headers.get('retry-after'), code }
}

/** An app whose /slow requests wait until `release()`; `maxInFlight` as given. */
async function slowApp (t: TestContext, maxInFlight: number) {
  const { lines: logs, stream } = new LogLines()
  const app = testApp(t, { logger: { level: 'info', stream }, logController: new LogController({ disableRequestLogging: true }) })
  await app.register(headroomHealth, {
    handleSignals: false, checkIntervalMs: 60_000, pressure: { maxInFlight, inFlightRetryAfterSeconds: 2, sampleIntervalMs: 100 }
  })
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let entered = 0
  const shed: Array<string | undefined> = []
  app.get('/slow', async () => {
    entered++
    await released
    return { ok: true }
  })
  app.addHook('onResponse', async (request) => { shed.push(shedReason(request)) })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base, release, entered: () => entered, shed, logs }
}

t.test('more concurrent slow requests than maxInFlight: the excess is answered 503 + Retry-After at once, the probes still answer', async (t) => {
  const { app, base, release, entered, shed, logs } = await slowApp(t, 5)
  const slow = Array.from({ length: 12 }, () => get(base, '/slow'))
  // the 7 over the bound are answered while the 5 admitted still wait
  const early = await Promise.race([Promise.all(slow.slice(0)).then(() => 'all'), new Promise((resolve) => setTimeout(resolve, 2000, 'timeout'))])
  t.equal(early, 'timeout', 'the admitted requests are still waiting')
  t.equal(entered(), 5, 'exactly maxInFlight requests reached the handler')
  for (const path of ['/health', '/health/ready', '/metrics']) t.equal((await get(base, path)).status, 200, `${path} answers while the bound is reached`)
  const metrics = await app.inject('/metrics')
  t.match(metrics.body, /headroom_health_http_requests_in_flight 5\n/, 'the gauge counts the admitted requests, not the shed ones')
  release()
  const hits = await Promise.all(slow)
  const ok = hits.filter((h) => h.status === 200)
  const refused = hits.filter((h) => h.status === 503)
  t.equal(ok.length, 5, 'the admitted requests answer 200')
  t.equal(refused.length, 7, 'the excess is refused')
  for (const h of refused) t.match(h, { retryAfter: '2', code: 'HEADROOM_HEALTH_OVERLOADED' })
  t.equal(shed.filter((r) => r === 'inFlight').length, 7, 'shedReason() names the shed requests, and only them')
  t.match((await app.inject('/metrics')).body, /headroom_health_shed_requests_total\{reason="inFlight"\} 7\n/)
  t.equal((await get(base, '/slow')).status, 200, 'below the bound again: admitted')
  // one line when shedding starts, one when it has ended (a whole sample interval without a shed), none per request
  while (!logs.some((l) => l.msg === 'load shedding ended')) await sleep(50)
  const lines = logs.filter((l) => /shedding/.test(l.msg))
  t.match(lines, [{ level: 40, reason: 'inFlight', inFlight: 5 }, { level: 30, msg: 'load shedding ended', shed: { inFlight: 7 } }])
  t.equal(lines.length, 2)
})

t.test('maxInFlight 0 (the default) never sheds', async (t) => {
  const { base, release, entered } = await slowApp(t, 0)
  const slow = Array.from({ length: 20 }, () => get(base, '/slow'))
  while (entered() < 20) await sleep(20)
  release()
  t.ok((await Promise.all(slow)).every((h) => h.status === 200))
})

t.test('a client that goes away is counted out of flight: its slot is free for the next request', async (t) => {
  const { base, release, entered } = await slowApp(t, 2)
  const aborts = [new AbortController(), new AbortController()]
  const gone = aborts.map((a) => fetch(base + '/slow', { signal: a.signal }).catch(() => null))
  while (entered() < 2) await sleep(20)
  t.equal((await get(base, '/slow')).status, 503, 'the bound is reached')
  for (const a of aborts) a.abort()
  await Promise.all(gone)
  // the server sees each close within a moment
  let hit: Hit | undefined
  for (let i = 0; i < 50; i++) {
    const next = get(base, '/slow')
    await sleep(40)
    if (entered() > 2) {
      release()
      hit = await next
      break
    }
    await next
  }
  t.equal(hit?.status, 200, 'admitted once the gone clients are counted out')
})
