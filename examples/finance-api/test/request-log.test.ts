import t from 'tap'
import { hostileApp } from './hostile.js'
import { LogLines, sleep, type TestContext } from '@headroom/testing'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'

/** the app with REQUEST_LOG and REQUEST_LOG_SLOW_MS as given, a 500 route and a 300 ms route */
async function loggedApp (t: TestContext, env: Record<string, string>) {
  const logs = new LogLines()
  const app = await hostileApp(t, {
    logs,
    env,
    routes: (app) => {
      app.get('/boom', { config: { rateLimit: false } }, async () => { throw new Error('kaput') })
      app.get('/slow', { config: { rateLimit: false } }, async () => {
        await sleep(300)
        return { ok: true }
      })
    }
  })
  const hit = async (url: string, id: string, headers: Record<string, string> = {}) => {
    const res = await app.inject({ url, headers: { 'x-request-id': id, ...headers } })
    return res.statusCode
  }
  return { logs, hit }
}

t.test('REQUEST_LOG=errors: no line for a fast 2xx, 4xx or 404; one for a 5xx and one for a slow request, each with its request id', async (t) => {
  const { logs, hit } = await loggedApp(t, { REQUEST_LOG: 'errors', REQUEST_LOG_SLOW_MS: '60000' })
  t.equal(await hit('/health', 'ok-1'), 200)
  t.equal(await hit('/', 'page-1'), 200)
  t.equal(await hit('/api/summary', 'unauth-1'), 401)
  t.equal(await hit('/nope', 'missing-1'), 404)
  for (const id of ['ok-1', 'page-1', 'unauth-1', 'missing-1']) t.same(logs.of(id), [], `${id}: no line`)

  t.equal(await hit('/boom', 'boom-1'), 500)
  const boom = logs.of('boom-1')
  t.ok(boom.some((l) => l.level === 50 && l.err?.message === 'kaput'), 'the error handler\'s line, with the error')
  t.ok(boom.some((l) => l.level === 50 && l.msg === 'request failed' && l.req?.method === 'GET' && l.req?.url === '/boom' && l.res?.statusCode === 500 && typeof l.responseTime === 'number'),
    'the request line: method, URL, status and time')
  t.notOk(boom.some((l) => l.msg === 'incoming request'), 'no incoming line')

  // a traced request: the request id is the trace id, in each line written
  t.equal(await hit('/boom', 'ignored', { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`, 'x-request-id': '' }), 500)
  t.ok(logs.of(TRACE_ID).some((l) => l.msg === 'request failed'), 'the trace id is the reqId of the line')
})

t.test('REQUEST_LOG=errors: a request slower than REQUEST_LOG_SLOW_MS gets a warn line with its request id', async (t) => {
  const { logs, hit } = await loggedApp(t, { REQUEST_LOG: 'errors', REQUEST_LOG_SLOW_MS: '100' })
  t.equal(await hit('/slow', 'slow-1'), 200)
  t.match(logs.of('slow-1'), [{ level: 40, msg: 'slow request', slow: true, req: { method: 'GET', url: '/slow' }, res: { statusCode: 200 } }])
  t.ok(logs.of('slow-1')[0]?.responseTime >= 100)
})

t.test('REQUEST_LOG=all: the incoming and completed lines of every request and the 4xx\'s reason, as before', async (t) => {
  const { logs, hit } = await loggedApp(t, { REQUEST_LOG: 'all' })
  t.equal(await hit('/health/ready', 'probe-1'), 200)
  t.equal(await hit('/', 'page-1'), 200)
  t.equal(await hit('/api/summary', 'unauth-1'), 401)
  t.same(logs.of('page-1').map((l) => l.msg), ['incoming request', 'request completed'])
  t.same(logs.of('unauth-1').map((l) => l.level), [30, 30, 30], 'incoming, the 401\'s reason, completed')
  t.same(logs.of('probe-1'), [], 'probes are never logged per request')
})

t.test('REQUEST_LOG=off: no request line; a 5xx still logs its error with the request id', async (t) => {
  const { logs, hit } = await loggedApp(t, { REQUEST_LOG: 'off', REQUEST_LOG_SLOW_MS: '1' })
  t.equal(await hit('/slow', 'slow-1'), 200)
  t.equal(await hit('/boom', 'boom-1'), 500)
  t.same(logs.of('slow-1'), [])
  t.match(logs.of('boom-1'), [{ level: 50, err: { message: 'kaput' } }])
  t.equal(logs.of('boom-1').length, 1)
})
