import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import type { Backend } from '../backends.js'
import { waitFor } from '@headroom/testing'
import { buildApp, metricValue } from '../helpers.js'

const N = 12
const COALESCED = 'headroom_cache_coalesced_waits_total'

/** Waits up to 5 s for `cond`, then goes on either way: the leader's handler holds its response until the other requests wait on it. */
const until = (cond: () => Promise<boolean>): Promise<void> => waitFor('the other requests to wait', cond, 5000, 5).catch(() => {})

const waits = (app: FastifyInstance, namespace: string, scope: 'process' | 'cluster') => metricValue(app, COALESCED, { namespace, scope })

function burst (app: FastifyInstance, n: number, url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse[]> {
  return Promise.all(Array.from({ length: n }, () => app.inject({ url, headers })))
}

/** Route caching coalesces concurrent misses like `wrap` (per process, and across instances with `lease: true`). */
export function routeCoalescing (t: Test, backend: Backend): void {
  async function shared (t: Parameters<typeof buildApp>[0], setup: (app: FastifyInstance) => void) {
    const r = await backend.connect(t)
    return buildApp(t, { redis: await r.client(), prefix: r.prefix }, setup)
  }

  t.test('concurrent misses of a cold cached route run the handler once; every request gets the same body', async (t) => {
    let calls = 0
    const app: FastifyInstance = await shared(t, (a) => {
      a.get('/quote', { config: { cache: true } }, async () => {
        calls++
        await until(async () => await waits(app, 'http', 'process') >= N - 1)
        return { price: Math.random() }
      })
    })
    const responses = await burst(app, N, '/quote')
    t.equal(calls, 1, 'one handler call for the burst')
    t.same(responses.map((r) => r.statusCode), Array(N).fill(200))
    t.equal(new Set(responses.map((r) => r.body)).size, 1, 'one body for all')
    t.equal(new Set(responses.map((r) => r.headers.etag)).size, 1, 'one ETag for all')
    t.equal(responses.filter((r) => r.headers['x-cache'] === 'miss').length, 1)
    t.equal(await waits(app, 'http', 'process'), N - 1)
  })

  t.test('a failed or non-shareable response of the first request is never served to the waiters', async (t) => {
    let calls = 0
    // the waits the first request holds its response for: N - 1 more than before its burst
    let gate = N - 1
    const app: FastifyInstance = await shared(t, (a) => {
      // the first request fails once the others wait on it; the others succeed
      a.get('/fails-first', { config: { cache: true } }, async () => {
        const n = ++calls
        if (n === 1) {
          await until(async () => await waits(app, 'http', 'process') >= N - 1)
          throw new Error('first one fails')
        }
        return { n }
      })
      for (const cc of ['private', 'no-store']) {
        a.get(`/${cc}`, { config: { cache: true } }, async (_request, reply) => {
          const n = ++calls
          if (n === 1) await until(async () => await waits(app, 'http', 'process') >= gate)
          reply.header('cache-control', cc)
          return { n }
        })
      }
    })

    const failed = await burst(app, N, '/fails-first')
    t.equal(failed.filter((r) => r.statusCode === 500).length, 1, 'only the first request gets the 500')
    t.equal(failed.filter((r) => r.statusCode === 200).length, N - 1, 'the waiters ran their own handler')
    t.equal(calls, N)

    for (const cc of ['private', 'no-store']) {
      calls = 0
      const before = await waits(app, 'http', 'process')
      gate = before + N - 1
      const res = await Promise.all(Array.from({ length: N }, () => app.inject(`/${cc}`)))
      t.ok(await waits(app, 'http', 'process') - before >= N - 1, `${cc}: the others waited on the first`)
      t.equal(calls, N, `${cc}: every request ran the handler`)
      t.equal(new Set(res.map((r) => r.body)).size, N, `${cc}: every request got its own answer`)
      t.ok(res.every((r) => r.headers['cache-control'] === cc && r.headers['x-cache'] === undefined), `${cc}: never stored`)
      t.not((await app.inject(`/${cc}`)).headers['x-cache'], 'hit', `${cc}: a later request is not a hit`)
    }
  })

  t.test('per-user routes coalesce per user and never across users', async (t) => {
    const calls: Record<string, number> = {}
    const app: FastifyInstance = await shared(t, (a) => {
      a.get('/me', { config: { cache: { user: (req) => req.headers['x-user'] as string | undefined } } }, async (request) => {
        const user = request.headers['x-user'] as string
        calls[user] = (calls[user] ?? 0) + 1
        await until(async () => await waits(app, 'http-user', 'process') >= 2 * (N - 1))
        return { user, secret: Math.random() }
      })
    })
    const [alice, bob] = await Promise.all([burst(app, N, '/me', { 'x-user': 'alice' }), burst(app, N, '/me', { 'x-user': 'bob' })])
    t.same(calls, { alice: 1, bob: 1 }, 'one handler call per user')
    t.ok(alice!.every((r) => r.json().user === 'alice'), 'alice only ever sees alice\'s response')
    t.ok(bob!.every((r) => r.json().user === 'bob'), 'bob only ever sees bob\'s response')
    t.equal(new Set(alice!.map((r) => r.body)).size, 1)
    t.equal(new Set(bob!.map((r) => r.body)).size, 1)
  })

  t.test('lease: true coalesces concurrent misses across instances: one handler call in all', async (t) => {
    const r = await backend.connect(t)
    let calls = 0
    const apps: FastifyInstance[] = []
    const build = async () => buildApp(t, { redis: await r.client(), prefix: r.prefix, namespaces: { http: { lease: true } } }, (a) => {
      a.get('/report', { config: { cache: true } }, async () => {
        calls++
        // hold the response until every other request waits: the other instance's leader on the lease, the rest on their leader
        await until(async () => {
          const [pa, pb, ca, cb] = await Promise.all([waits(apps[0]!, 'http', 'process'), waits(apps[1]!, 'http', 'process'), waits(apps[0]!, 'http', 'cluster'), waits(apps[1]!, 'http', 'cluster')])
          return pa + pb >= N - 2 && ca + cb >= 1
        })
        return { report: Math.random() }
      })
    })
    apps.push(await build(), await build())
    const [a, b] = await Promise.all([burst(apps[0]!, N / 2, '/report'), burst(apps[1]!, N / 2, '/report')])
    const all = [...a!, ...b!]
    t.equal(calls, 1, 'one handler call across both instances')
    t.ok(all.every((res) => res.statusCode === 200))
    t.equal(new Set(all.map((res) => res.body)).size, 1, 'the same body on both instances')
  })
}
