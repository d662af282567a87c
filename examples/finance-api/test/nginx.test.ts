import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { join } from 'node:path'
import { freePort, type TestContext, sleep } from '@headroom/testing'
import t from 'tap'
import { HttpClient } from '../topology/load.js'
import { NGINX_TEMPLATE_DIR, nginxTest, renderConfig, renderTemplate, startNginx } from '../topology/nginx.js'
import { tempDir } from '../topology/stack.js'

/**
 * deploy/nginx as the image renders it, checked by real nginx: `nginx -t`,
 * then the behaviours the topology test relies on, against three small
 * upstream servers that record what reaches them (the full topology is
 * `pnpm test:topology`).
 */

t.test('the templates name only addresses and ports, and nginx -t accepts the rendered configuration', async (t) => {
  const variables = new Set<string>()
  for (const file of ['nginx.conf.template', 'finance-api-upstreams.conf.template']) {
    for (const m of readFileSync(join(NGINX_TEMPLATE_DIR, file), 'utf8').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) variables.add(m[1]!)
  }
  t.same([...variables].sort(), ['FINANCE_API_1', 'FINANCE_API_2', 'FINANCE_API_3', 'FINANCE_API_NGINX_HTTP_LISTEN', 'FINANCE_API_NGINX_LISTEN'])
  t.throws(() => renderTemplate('listen ${PORT};', {}), /no value for \$\{PORT\}/) // eslint-disable-line no-template-curly-in-string

  const prefix = tempDir(t, 'nginx')
  // (addresses: nginx -t resolves names, and a compose or cluster name does not resolve here)
  await renderConfig(prefix, { listen: '127.0.0.1:8443', httpListen: '127.0.0.1:8080', upstreams: ['10.0.0.1:3000', '10.0.0.2:3000', '10.0.0.3:3000'] })
  await nginxTest(prefix)

  const conf = readFileSync(join(prefix, 'nginx.conf'), 'utf8')
  const nextUpstream = /proxy_next_upstream\s+([^;]+);/.exec(conf)![1]!.split(/\s+/)
  t.notOk(nextUpstream.includes('non_idempotent'), 'a POST that reached an instance is never sent to another')
  t.notOk(nextUpstream.includes('http_503'), "the app's 503s (with Retry-After) are answers, not instance failures")
  t.ok(nextUpstream.includes('error') && nextUpstream.includes('timeout'))
})

interface Upstream { server: Server, address: string, seen: IncomingMessage[] }

async function upstream (t: TestContext): Promise<Upstream> {
  const seen: IncomingMessage[] = []
  const server = createServer((req, res) => {
    seen.push(req)
    req.resume()
    req.once('end', () => {
      if (req.url === '/reset') {
        req.socket.destroy()
      } else if (req.url === '/unavailable') {
        res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"code":"DOWN"}')
      } else if (req.url!.startsWith('/assets/')) {
        res.writeHead(200, { 'cache-control': 'public, max-age=31536000, immutable', 'content-type': 'text/css' }).end('body{}')
      } else {
        res.writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ xff: req.headers['x-forwarded-for'], proto: req.headers['x-forwarded-proto'], cookie: req.headers.cookie ?? null }))
      }
    })
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { server, address: `127.0.0.1:${port}`, seen }
}

t.test('behind the configuration: forwarded headers, retries, limits, the edge cache', async (t) => {
  const ups = [await upstream(t), await upstream(t), await upstream(t)]
  const hits = (url: string, method = 'GET') => ups.reduce((n, u) => n + u.seen.filter((r) => r.url === url && r.method === method).length, 0)
  const nginx = await startNginx(t, tempDir(t, 'nginx'), await freePort(), await freePort(), [ups[0]!.address, ups[1]!.address, ups[2]!.address])
  const client = new HttpClient(nginx.url, nginx.certificate, '127.0.0.1')
  t.teardown(() => client.close())

  // the edge replaces a forged X-Forwarded-For: the app trusts this hop only
  const echo = await client.send('GET', '/echo')
  t.equal(echo.status, 200)
  t.same(echo.body, { xff: '127.0.0.1', proto: 'https', cookie: null })
  const forged = await client.send('GET', '/echo', undefined, { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'http' })
  t.same(forged.body, { xff: '127.0.0.1', proto: 'https', cookie: null }, 'what the client claims is replaced')

  // the request id the app logs: the client's when it has the app's form, else nginx's $request_id
  const ids = () => ups.flatMap((u) => u.seen).map((r) => String(r.headers['x-request-id']))
  const generated = () => ids().filter((id) => /^[0-9a-f]{32}$/.test(id)).length
  t.equal(generated(), ids().length, 'nginx generates an X-Request-Id for every request that has none')
  await client.send('GET', '/echo', undefined, { 'x-request-id': 'client-trace.42' })
  t.ok(ids().includes('client-trace.42'), 'a well-formed X-Request-Id is passed on')
  const before = generated()
  await client.send('GET', '/echo', undefined, { 'x-request-id': 'bad id <script>' })
  t.equal(generated(), before + 1, 'a malformed one is replaced at the edge')

  // an answer of the app's, 503 with Retry-After, reaches the client from the first instance, not retried
  const unavailable = await client.send('GET', '/unavailable')
  t.equal(unavailable.status, 503)
  t.equal(unavailable.headers['retry-after'], '1')
  t.equal(hits('/unavailable'), 1)

  const big = await client.send('POST', '/echo', { blob: 'x'.repeat(70 * 1024) })
  t.equal(big.status, 413, 'bodies over client_max_body_size stop at the edge')

  const first = await client.send('GET', '/assets/app.css')
  const second = await client.send('GET', '/assets/app.css')
  t.equal(first.headers['x-cache-status'], 'MISS')
  t.equal(second.headers['x-cache-status'], 'HIT')
  t.match(second.headers['cache-control'], /immutable/)
  t.equal(hits('/assets/app.css'), 1, 'the second copy came from the edge cache')

  t.equal((await client.send('GET', '/metrics')).status, 404, '/metrics is not served at the edge')

  // a POST that reached an instance whose connection then broke: 502, never sent again
  const post = await client.send('POST', '/reset', { amountCents: -1 })
  t.equal(post.status, 502)
  t.equal(hits('/reset', 'POST'), 1, 'not retried: non_idempotent is off')
  await sleep(1100) // fail_timeout: the instance is tried again
  // the same failure for a GET: tried on the other instances
  const get = await client.send('GET', '/reset')
  t.equal(get.status, 502)
  t.ok(hits('/reset') >= 2 && hits('/reset') <= 3, `a GET is retried on the next instance (${hits('/reset')} tries)`)
})
