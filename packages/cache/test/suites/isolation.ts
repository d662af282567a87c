import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { errors, type RouteCacheOptions } from '../../src/index.js'
import { buildApp } from '../helpers.js'
import { mulberry32 } from '../prng.js'
import type { Backend, Connection } from '../backends.js'

declare module '../../src/index.js' {
  interface CacheNamespaces {
    summary: { perUser: true }
  }
}

export function isolation (t: Test, backend: Backend): void {
  /** 90 plain ids and 10 that would collide under naive `ns:user:key` concatenation or escaping. */
  const USERS = [
    ...Array.from({ length: 90 }, (_v, i) => `u${i}`),
    'u1|', 'u1%7C', '|', '%', 'u|1', 'u1|s|', 'http-user|u|u1', 'u1|/me/summary', 'g|u1', 'u1%'
  ]

  interface World { balances: Map<string, number> }

  /** One instance: per-user routes and a per-user namespace over a shared "database" of balances. */
  async function instance (t: Parameters<typeof buildApp>[0], r: Connection, world: World, summaryRoute: RouteCacheOptions, sharedInsights = false): Promise<FastifyInstance> {
    const userOf = (request: { headers: Record<string, unknown> }): string | undefined => {
      const raw = request.headers['x-user']
      return typeof raw === 'string' ? decodeURIComponent(raw) : undefined
    }
    return buildApp(t, { redis: await r.client(), prefix: r.prefix, namespaces: { summary: { perUser: true, ttl: 60_000 } } }, (app) => {
      app.get('/me/summary', { config: { cache: { ...summaryRoute, user: summaryRoute.user ? userOf : undefined } } }, async (request) => {
        const user = userOf(request)!
        return { user, balance: world.balances.get(user) ?? 0 }
      })
      app.get<{ Querystring: { period: string } }>('/me/insight', async (request) => {
        const user = userOf(request)!
        // sharedInsights: the mistake a per-user namespace rules out, for the harness's own check
        const scope = sharedInsights ? app.cache : app.cache.ns('summary').forUser(user)
        return scope.wrap(`insight:${request.query.period}`, () => ({ user, period: request.query.period, balance: world.balances.get(user) ?? 0 }), { tags: ['insights'] })
      })
      app.get<{ Querystring: { period: string } }>('/me/insight/peek', async (request) => {
        const user = userOf(request)!
        return (await app.cache.ns('summary').forUser(user).get(`insight:${request.query.period}`)) ?? { user, none: true }
      })
      app.post('/me/deposit', async (request) => {
        const user = userOf(request)!
        world.balances.set(user, (world.balances.get(user) ?? 0) + 1)
        await app.cache.ns('http-user').forUser(user).delete('/me/summary')
        await app.cache.ns('summary').forUser(user).invalidateTags(['insights'])
        return { user, ok: true }
      })
    })
  }

  /** Runs `ops` random operations and counts responses that carry another user's data. */
  async function run (apps: FastifyInstance[], ops: number, seed: number): Promise<{ leaks: string[], answered: number, hits: number }> {
    const rnd = mulberry32(seed)
    const leaks: string[] = []
    const etags = new Map<string, string>()
    let answered = 0
    let hits = 0
    const one = async (): Promise<void> => {
      const user = USERS[Math.floor(rnd() * USERS.length)]!
      const app = apps[Math.floor(rnd() * apps.length)]!
      const headers: Record<string, string> = { 'x-user': encodeURIComponent(user) }
      const pick = rnd()
      let res
      if (pick < 0.4) {
        // sometimes present another user's ETag: a 304 would confirm their cached data
        const other = USERS[Math.floor(rnd() * USERS.length)]!
        const etag = etags.get(other)
        if (etag && rnd() < 0.3) headers['if-none-match'] = etag
        res = await app.inject({ method: 'GET', url: '/me/summary', headers })
        if (res.statusCode === 304 && other !== user && etags.get(user) !== etag) leaks.push(`304 for ${user} on ${other}'s ETag`)
        if (res.headers.etag) etags.set(user, String(res.headers.etag))
        if (res.headers['x-cache'] === 'hit') hits++
      } else if (pick < 0.75) {
        res = await app.inject({ method: 'GET', url: `/me/insight?period=${Math.floor(rnd() * 3)}`, headers })
      } else if (pick < 0.9) {
        res = await app.inject({ method: 'GET', url: `/me/insight/peek?period=${Math.floor(rnd() * 3)}`, headers })
      } else {
        res = await app.inject({ method: 'POST', url: '/me/deposit', headers })
      }
      if (res.statusCode >= 500) leaks.push(`status ${res.statusCode}`)
      if (res.statusCode === 200) {
        answered++
        const body = res.json() as { user: string }
        if (body.user !== user) leaks.push(`${user} got ${body.user}'s data from ${res.raw.req.url}`)
      }
    }
    for (let done = 0; done < ops; done += 25) {
      await Promise.all(Array.from({ length: Math.min(25, ops - done) }, one))
    }
    return { leaks, answered, hits }
  }

  t.test('10,000 random operations by 100 users on per-user routes and namespaces: no response carries another user\'s data', async (t) => {
    const r = await backend.connect(t)
    const world: World = { balances: new Map() }
    const apps = [
      await instance(t, r, world, { user: () => 'set per instance' }),
      await instance(t, r, world, { user: () => 'set per instance' })
    ]
    const { leaks, answered, hits } = await run(apps, 10_000, 7)
    t.same(leaks.slice(0, 5), [], 'no leaks')
    t.equal(leaks.length, 0)
    t.ok(answered > 8000, `${answered} responses checked`)
    t.ok(hits > 1000, `${hits} of them served from the cache, so the check saw cached data`)
  })

  t.test('the same harness catches a leak: a per-user response cached by URL alone', async (t) => {
    const r = await backend.connect(t)
    const world: World = { balances: new Map() }
    // the mistake the plugin prevents: a shared namespace for a per-user response
    const apps = [await instance(t, r, world, { namespace: 'http' })]
    const { leaks } = await run(apps, 500, 7)
    t.ok(leaks.filter((l) => l.includes('/me/summary')).length > 50, `${leaks.length} leaks detected`)
  })

  t.test('the same harness catches a leak: per-user data wrapped in a shared namespace', async (t) => {
    const r = await backend.connect(t)
    const world: World = { balances: new Map() }
    const apps = [await instance(t, r, world, { user: () => 'x' }, true)]
    const { leaks } = await run(apps, 500, 7)
    t.ok(leaks.filter((l) => l.includes('/me/insight')).length > 50, `${leaks.length} leaks detected`)
  })

  t.test('a per-user namespace cannot be addressed without a user, by types and at runtime', async (t) => {
    const app = await buildApp(t, { namespaces: { summary: { perUser: true } } })
    const summary = app.cache.ns('summary')
    // @ts-expect-error a per-user namespace has no key operations of its own
    t.equal(summary.wrap, undefined)
    // @ts-expect-error nor get
    t.equal(summary.get, undefined)
    t.throws(() => summary.forUser(''), errors.InvalidUser)
    // @ts-expect-error a user is required
    t.throws(() => summary.forUser(undefined), errors.InvalidUser)
    t.throws(() => summary.forUser({} as unknown as string), errors.InvalidUser)
    await summary.forUser('alice').set('k', { user: 'alice' })
    t.equal(await summary.forUser('bob').get('k'), undefined)
    t.equal(await summary.forUser('alice|').get('k'), undefined)
    t.same(await summary.forUser('alice').get('k'), { user: 'alice' })
    t.throws(() => app.cache.ns('nope'), errors.UnknownNamespace)
  })

  t.test('a per-user namespace on a route requires config.cache.user, failing at ready', async (t) => {
    await t.rejects(buildApp(t, { namespaces: { summary: { perUser: true } } }, (app) => {
      app.get('/s', { config: { cache: { namespace: 'summary' } } }, async () => 'x')
    }), errors.UserRequired)
    await t.rejects(buildApp(t, {}, (app) => {
      app.get('/s', { config: { cache: { namespace: 'http', user: () => 'u' } } }, async () => 'x')
    }), { code: 'HEADROOM_CACHE_INVALID_OPTION' })
  })
}
