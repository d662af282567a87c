import { connect, type Socket } from 'node:net'
import { isolatedSchema, sleep } from '@headroom/testing'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/migrate.js'

/** Everything the server writes on `socket` until it closes, with whether it ended with a response. */
function collect (socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { text += chunk })
    socket.on('close', () => resolve(text))
    socket.on('error', () => { /* a reset shows as a missing response */ })
  })
}

/** The app on a migrated private schema, listening, with no drain delay: close() follows drain() at once. */
async function listening (t: Test) {
  const { url } = await isolatedSchema(t)
  await migrate(url)
  const app = await buildApp({ config: loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', DRAIN_DELAY_MS: '0' }), databaseUrl: url })
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const port = Number(new URL(address).port)
  return { app, port }
}

// Regression: with forceCloseConnections: true, close() after the drain delay
// cut every connection, so a request still uploading its body (behind a load
// balancer: a POST that may already have reached the handler) got no answer
// and the balancer a reset (a 502 for a write it cannot retry). A drain
// answers what is in flight and closes only idle connections.
t.test('a request still arriving when the drain closes the server is answered; an idle keep-alive connection does not hold the close', async (t) => {
  const { app, port } = await listening(t)

  // an idle keep-alive connection: one request answered, then nothing
  const idle = connect({ host: '127.0.0.1', port })
  const idleText = collect(idle)
  idle.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')

  // a login whose body is half sent
  const body = JSON.stringify({ email: 'nobody@example.com', password: 'not the password at all' })
  const slow = connect({ host: '127.0.0.1', port })
  const slowText = collect(slow)
  slow.write(`POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`)
  slow.write(body.slice(0, 10))
  await sleep(200)

  const drained = app.health.drain()
  await sleep(200)
  // write, not end: a half-closed socket would be closed by the server before its answer
  slow.write(body.slice(10))

  t.equal(await drained, 'clean', 'the drain finished without forcing connections')
  const answer = await slowText
  t.match(answer, /^HTTP\/1\.1 401 /, 'the request in flight got its answer (401: no such user), not a reset')
  t.match(await idleText, /^HTTP\/1\.1 200 /, 'the idle connection had its answer and was closed by the drain')
})

// Regression (topology scenario 1, a rolling restart: one GET answered 503 in 2 ms): a request
// arriving while close() runs, on a connection the balancer had just opened (accepted, no request
// yet, so not closed as idle), got Fastify's own closing 503 (return503OnClosing), with no
// Retry-After, which nginx does not retry. The dependencies close only after the server has, so such
// a request is served like any other, and its connection ends after it.
t.test('a request arriving on a just-opened connection while the server closes is served, not answered 503', async (t) => {
  const { app, port } = await listening(t)

  // a slow request keeps the close waiting, as traffic in flight does
  const body = JSON.stringify({ email: 'nobody@example.com', password: 'not the password at all' })
  const busy = connect({ host: '127.0.0.1', port })
  const busyText = collect(busy)
  busy.write(`POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`)
  busy.write(body.slice(0, 10))
  // a connection opened, its request not yet sent
  const fresh = connect({ host: '127.0.0.1', port })
  const freshText = collect(fresh)
  await new Promise((resolve) => fresh.once('connect', resolve))
  await sleep(200)

  const drained = app.health.drain()
  await sleep(200)
  fresh.write('GET /api/accounts HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(200)
  busy.write(body.slice(10))

  t.equal(await drained, 'clean')
  t.match(await busyText, /^HTTP\/1\.1 401 /, 'the login in flight answered')
  const answer = (await freshText).split('\r\n')[0] ?? ''
  t.notMatch(answer, /^HTTP\/1\.1 503/, `no closing 503 (${answer || 'closed without an answer'})`)
})
