import t, { type Test } from 'tap'
import http from 'node:http'
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import { isolatedSchema, sleep } from '@headroom/testing'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'

// low on purpose, to keep the test short; the checking interval is half the headers timeout
const HEADERS_MS = 600
const REQUEST_MS = 1200
const KEEP_ALIVE_MS = 1000
// a busy machine (load 6+) delays timers and the accept loop: generous, yet far below Node's defaults
// (60 s headers, 300 s request) and Fastify's (no request timeout), which are what this test guards against
const SLACK_MS = 1500

async function listening (t: Test) {
  const { url } = await isolatedSchema(t)
  await migrate(url)
  const app = await buildApp({
    config: loadConfig({
      DATABASE_URL: url,
      LOG_LEVEL: 'silent',
      HEADERS_TIMEOUT_MS: String(HEADERS_MS),
      REQUEST_TIMEOUT_MS: String(REQUEST_MS),
      KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS)
    }),
    databaseUrl: url
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as net.AddressInfo).port
}

interface Ending { ms: number, reply: string }

/** A client gives up (and the test fails) this long after connecting: a server without the timeouts would keep it for minutes. */
const GIVE_UP_MS = 6000

/**
 * A raw client: sends `head` at once, then `trickle` one byte every `everyMs`
 * (never finishing unless the trickle ends), until the server answers or
 * closes, or GIVE_UP_MS. Resolves with how long that took and what the server said.
 */
function slowClient (port: number, head: string, trickle: string, everyMs: number, signal?: { stop: boolean }): Promise<Ending> {
  return new Promise((resolve) => {
    const start = performance.now()
    const socket = net.connect(port, '127.0.0.1')
    let reply = ''
    let i = 0
    let timer: NodeJS.Timeout | undefined
    socket.setEncoding('utf8')
    const giveUp = setTimeout(() => socket.destroy(), GIVE_UP_MS)
    socket.on('connect', () => {
      socket.write(head)
      timer = setInterval(() => {
        if (signal?.stop || i >= trickle.length) return
        socket.write(trickle[i++] as string)
      }, everyMs)
    })
    socket.on('data', (chunk: string) => { reply += chunk })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(timer)
      clearTimeout(giveUp)
      resolve({ ms: performance.now() - start, reply })
    })
  })
}

const status = (reply: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0)

t.test('a client sending its headers slowly gets 408 and is cut off at the headers timeout', async (t) => {
  const port = await listening(t)
  const end = await slowClient(port, 'GET /health HTTP/1.1\r\nHost: x\r\n', 'X-Slow: ' + 'a'.repeat(500), 50)
  t.equal(status(end.reply), 408, `408 Request Timeout (${end.reply.split('\r\n')[0]})`)
  t.ok(end.ms >= HEADERS_MS - 50, `not before the headers timeout (${end.ms.toFixed(0)} ms)`)
  t.ok(end.ms <= HEADERS_MS + SLACK_MS, `closed ${end.ms.toFixed(0)} ms after connecting, within ${HEADERS_MS} ms + ${SLACK_MS} ms of slack`)
})

t.test('a client sending its body slowly, or not at all, gets 408 and is cut off at the request timeout', async (t) => {
  const port = await listening(t)
  const head = 'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n'
  const [slow, stalled] = await Promise.all([
    slowClient(port, head, '{"email":"' + 'a'.repeat(190), 50),
    slowClient(port, head, '', 50)
  ])
  for (const [what, end] of [['a trickled body', slow], ['a body that never comes', stalled]] as const) {
    t.equal(status(end.reply), 408, `${what}: 408`)
    t.ok(end.ms >= REQUEST_MS - 50, `${what}: not before the request timeout (${end.ms.toFixed(0)} ms)`)
    t.ok(end.ms <= REQUEST_MS + SLACK_MS, `${what}: closed after ${end.ms.toFixed(0)} ms, within ${REQUEST_MS} ms + ${SLACK_MS} ms`)
  }
})

t.test('an idle keep-alive connection is closed at the keep-alive timeout', async (t) => {
  const port = await listening(t)
  const start = performance.now()
  const end = await slowClient(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', '', 1000)
  t.equal(status(end.reply), 200, 'the request is answered')
  t.ok(end.ms >= KEEP_ALIVE_MS - 50 && end.ms <= KEEP_ALIVE_MS + SLACK_MS, `then closed when idle for the keep-alive timeout: ${(performance.now() - start).toFixed(0)} ms after connecting, within ${KEEP_ALIVE_MS} ms + ${SLACK_MS} ms`)
  t.match(end.reply, /keep-alive: timeout=1\r\n/i, 'and the timeout is announced to the client')
})

t.test('300 slow clients at once do not starve normal requests', async (t) => {
  const port = await listening(t)
  const signal = { stop: false }
  let cut = 0
  let slowestCut = 0
  let slowStatuses = new Set<number>()
  // 300 at all times: each one that is cut off comes back, for about 4 s
  const slow = Array.from({ length: 300 }, async (_, i) => {
    await sleep(i % 50)
    while (!signal.stop) {
      const end = await slowClient(port, 'GET /health HTTP/1.1\r\nHost: x\r\n', 'X-Slow: ' + 'b'.repeat(1000), 100, signal)
      if (!signal.stop) {
        cut++
        slowStatuses = slowStatuses.add(status(end.reply))
        slowestCut = Math.max(slowestCut, end.ms)
      }
    }
  })

  await sleep(300)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => agent.destroy())
  const normal: Array<{ status: number, ms: number }> = []
  const get = (path: string) => new Promise<{ status: number, ms: number }>((resolve) => {
    const start = performance.now()
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - start }))
    }).on('error', () => resolve({ status: 0, ms: performance.now() - start }))
  })
  const until = performance.now() + 3500
  while (performance.now() < until) {
    normal.push(...await Promise.all([get('/health'), get('/api/auth/me'), get('/health'), get('/api/auth/me')]))
    await sleep(20)
  }
  signal.stop = true
  await Promise.all(slow)

  const failed = normal.filter((r) => r.status !== 200 && r.status !== 401)
  const slowest = Math.max(...normal.map((r) => r.ms))
  t.equal(failed.length, 0, `${normal.length} normal requests all answered 200 (/health) or 401 (/api/auth/me), no 5xx, no error: ${failed.map((r) => r.status).join(',')}`)
  // not starved: requests kept going through; how many depends on the machine's load, the bound on the slowest is what matters
  t.ok(normal.length >= 8, `${normal.length} normal requests went through during the attack`)
  t.ok(slowest <= 2000, `slowest normal request ${slowest.toFixed(0)} ms (bound 2000 ms, generous for a loaded machine)`)
  t.ok(cut >= 300, `${cut} slow clients cut off by the server`)
  t.ok(slowestCut <= HEADERS_MS + SLACK_MS * 2, `each within the headers timeout (the last one cut after ${slowestCut.toFixed(0)} ms, bound ${HEADERS_MS} ms + ${SLACK_MS * 2} ms with 300 at once)`)
  t.same([...slowStatuses].filter((s) => s !== 408 && s !== 0), [], `slow clients get 408 (or a bare close): ${[...slowStatuses].join(',')}`)
})

t.test('bad timeout values are refused at start, each naming its variable', async (t) => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env)
      return []
    } catch (err) {
      return (err as { problems: string[] }).problems
    }
  }
  t.match(problems({ HEADERS_TIMEOUT_MS: 'soon' }), [/^HEADERS_TIMEOUT_MS must be an integer/])
  t.match(problems({ REQUEST_TIMEOUT_MS: '-1' }), [/^REQUEST_TIMEOUT_MS must be an integer/])
  t.match(problems({ KEEP_ALIVE_TIMEOUT_MS: '500' }), [/^KEEP_ALIVE_TIMEOUT_MS must be an integer from 1000/])
  t.match(problems({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '10000' }), [/^HEADERS_TIMEOUT_MS \(20000\) must not exceed REQUEST_TIMEOUT_MS \(10000\)/])
  t.same(problems({ HEADERS_TIMEOUT_MS: '10000', REQUEST_TIMEOUT_MS: '10000', KEEP_ALIVE_TIMEOUT_MS: '75000' }), [], 'equal head and request timeouts are fine')
  t.match(loadConfig({}).server, { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 72_000 }, 'the documented defaults')
  // the shipped balancer must close an idle upstream connection before the instance does
  const nginx = await readFile(new URL('../deploy/nginx/nginx.conf.template', import.meta.url), 'utf8')
  const upstreamIdleS = Number(/\bkeepalive\s+\d+;\s*\n\s*keepalive_timeout\s+(\d+)s;/.exec(nginx)?.[1])
  t.ok(loadConfig({}).server.keepAliveTimeoutMs > upstreamIdleS * 1000, `KEEP_ALIVE_TIMEOUT_MS's default is above nginx's upstream keepalive_timeout (${upstreamIdleS} s)`)
})
