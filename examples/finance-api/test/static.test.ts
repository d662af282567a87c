import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { ASSET_MAX_AGE_S, PUBLIC_DIR, staticRoutes } from '../src/static.js'
import { testApp, type TestContext } from '@headroom/testing'

const ASSETS = new URL('assets/', PUBLIC_DIR)

async function app (t: TestContext) {
  const server = testApp(t, { logger: false })
  await server.register(staticRoutes)
  return server
}

t.test('every asset: its bytes, its type, a year of immutable caching, a content-hash ETag and 304 on a match', async (t) => {
  const server = await app(t)
  const files = readdirSync(ASSETS)
  t.ok(files.length >= 5)
  for (const file of files) {
    const bytes = readFileSync(new URL(file, ASSETS))
    const res = await server.inject(`/assets/${file}?v=whatever`)
    t.equal(res.statusCode, 200, file)
    t.same(res.rawPayload, bytes, `${file}: the file's bytes`)
    t.equal(res.headers['content-length'], String(bytes.length))
    t.equal(res.headers['cache-control'], `public, max-age=${ASSET_MAX_AGE_S}, immutable`)
    t.equal(res.headers.etag, `"${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}"`)
    const again = await server.inject({ url: `/assets/${file}`, headers: { 'if-none-match': res.headers.etag as string } })
    t.equal(again.statusCode, 304, `${file}: revalidated`)
    t.equal(again.payload, '')
  }
  t.match((await server.inject('/assets/app.js')).headers['content-type'], /^text\/javascript/)
  t.match((await server.inject('/assets/app.css')).headers['content-type'], /^text\/css/)
  t.match((await server.inject('/assets/favicon.svg')).headers['content-type'], /^image\/svg\+xml/)
  const head = await server.inject({ method: 'HEAD', url: '/assets/app.css' })
  t.equal(head.statusCode, 200, 'HEAD answers')
  t.equal(head.payload, '')
})

t.test('nothing outside the files present at start: unknown names and traversal are 404', async (t) => {
  const server = await app(t)
  for (const url of ['/assets/nope.js', '/assets/', '/assets/..%2fpackage.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/app.js%00.png', '/ASSETS/app.js']) {
    t.equal((await server.inject(url)).statusCode, 404, url)
  }
})

t.test('/ links every asset by its content hash and is revalidated by ETag', async (t) => {
  const server = await app(t)
  const res = await server.inject('/')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'public, no-cache')
  const linked = [...res.payload.matchAll(/\/assets\/([\w.-]+)\?v=([0-9a-f]{12})/g)]
  t.ok(linked.length >= 3, 'hashed links')
  for (const [, file, version] of linked) {
    t.equal((await server.inject(`/assets/${file}`)).headers.etag, `"${version}"`, `${file}: the link's version is the asset's ETag`)
  }
  t.equal((await server.inject({ url: '/', headers: { 'if-none-match': res.headers.etag as string } })).statusCode, 304)
})
