/**
 * Tracing in the compiled server as production runs it (`node dist/server.js`):
 * without OTEL_* variables no SDK module is even loaded (an ESM resolve hook
 * records every @opentelemetry module the process imports); with an endpoint
 * the spans reach an OTLP/HTTP receiver, flushed when the drain closes the app.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { isolatedSchema, type TestContext } from '@headroom/testing'
import t from 'tap'
import { build, DIST_SERVER, runServer } from './dist-server.js'

const HOOKS = `import { appendFileSync } from 'node:fs'
export async function resolve (specifier, context, next) {
  const resolved = await next(specifier, context)
  if (resolved.url.includes('@opentelemetry')) appendFileSync(process.env.IMPORT_LOG, resolved.url + '\\n')
  return resolved
}
`

/** NODE_OPTIONS that record the @opentelemetry modules a process resolves, and where. */
async function importRecorder (t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'headroom-test-imports-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'hooks.mjs'), HOOKS)
  await writeFile(join(dir, 'register.mjs'), `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)})\n`)
  const log = join(dir, 'imports.log')
  await writeFile(log, '')
  return {
    env: { NODE_OPTIONS: `--import=${pathToFileURL(join(dir, 'register.mjs')).href}`, IMPORT_LOG: log },
    /** the packages resolved, `@opentelemetry/api` and so on */
    packages: async () => [...new Set((await readFile(log, 'utf8')).split('\n').filter(Boolean).map((u) => /@opentelemetry\/[^/]+/.exec(u)?.[0]))].sort()
  }
}

/** A tiny OTLP/HTTP receiver: keeps each export's path, content type and body. */
async function receiver (t: TestContext) {
  const exports: Array<{ path: string, type: string, body: string }> = []
  const server = createServer((req: IncomingMessage, res) => {
    let body = ''
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      exports.push({ path: req.url ?? '', type: req.headers['content-type'] ?? '', body })
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exports }
}

t.before(build)

t.test('no OTEL_* variables: no SDK module loaded, only the API', async (t) => {
  const imports = await importRecorder(t)
  const { url } = await isolatedSchema(t)
  const server = await runServer(t, DIST_SERVER, { DATABASE_URL: url, ...imports.env })
  t.equal((await fetch(`${server.url}/api/auth/me`)).status, 401)
  t.equal(await server.stop(), 0)
  t.same(await imports.packages(), ['@opentelemetry/api'], 'the API (the recorder sees it: this check can fail), nothing else')
})

t.test('OTEL_SDK_DISABLED=true wins over an endpoint: nothing loaded', async (t) => {
  const imports = await importRecorder(t)
  const { url } = await isolatedSchema(t)
  const server = await runServer(t, DIST_SERVER, { DATABASE_URL: url, OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', ...imports.env })
  t.equal(await server.stop(), 0)
  t.same(await imports.packages(), ['@opentelemetry/api'])
})

t.test('an OTLP endpoint: the SDK starts, the spans reach the receiver when the drain closes the app', async (t) => {
  const imports = await importRecorder(t)
  const otlp = await receiver(t)
  const { url } = await isolatedSchema(t)
  const server = await runServer(t, DIST_SERVER, {
    DATABASE_URL: url,
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'finance-api-under-test',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci',
    // no export on the batch timer: what arrives was flushed at close
    OTEL_BSP_SCHEDULE_DELAY: '600000',
    ...imports.env
  })
  t.equal((await fetch(`${server.url}/api/auth/me`)).status, 401)
  t.equal((await fetch(`${server.url}/health/ready`)).status, 200)
  t.same(otlp.exports, [], 'nothing exported before the close')
  t.equal(await server.stop(), 0)
  t.equal(otlp.exports.length, 1, 'one export, at the close')
  const [sent] = otlp.exports
  t.equal(sent?.path, '/v1/traces')
  t.match(sent?.type, /application\/json/)
  const body = JSON.parse(sent?.body ?? '{}')
  const attrs = Object.fromEntries(body.resourceSpans[0].resource.attributes.map((a: { key: string, value: { stringValue?: string } }) => [a.key, a.value.stringValue]))
  t.match(attrs, { 'service.name': 'finance-api-under-test', 'deployment.environment.name': 'ci', 'service.version': /\d/ })
  const names = body.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans.map((sp: any) => sp.name)))
  t.ok(names.includes('GET /api/auth/me'), `the request's span (${names.join(', ')})`)
  t.notOk(names.some((n: string) => n.includes('health')), 'no probe span')
  const loaded = await imports.packages()
  for (const p of ['@opentelemetry/sdk-trace-node', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/resources']) t.ok(loaded.includes(p), `${p} loaded`)
  t.notOk(loaded.includes('@opentelemetry/exporter-trace-otlp-proto'), 'not the protobuf exporter, which was not asked for')
})
