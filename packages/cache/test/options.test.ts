import t from 'tap'
import { getHub } from '@headroom/core'
import { errors, normalizeOptions, DEFAULT_TTL_MS, DEFAULT_L1_MAX_TTL_MS } from '../src/index.js'
import { buildApp, health } from './helpers.js'

t.test('bad options fail at register with a message naming the option', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ defaults: { ttl: -1 } }, /"defaults\.ttl"/],
    [{ namespaces: { quotes: { staleIfError: 'long' } } }, /"namespaces\.quotes\.staleIfError"/],
    [{ namespaces: { 'a|b': {} } }, /"namespaces\.a\|b"/],
    [{ namespaces: { q: { timeout: 500, hardTimeout: 100 } } }, /"namespaces\.q\.timeout".*shorter than hardTimeout/],
    [{ namespaces: { q: { perUser: 'yes' } } }, /"namespaces\.q\.perUser"/],
    [{ namespaces: { http: { perUser: true } } }, /"namespaces\.http\.perUser"/],
    [{ l1: { maxBytes: 0 } }, /"l1\.maxBytes"/],
    [{ l1: { maxBytes: 10, maxEntryBytes: 100 } }, /"l1\.maxEntryBytes"/],
    [{ defaults: { perUser: true } }, /"defaults\.perUser"/],
    [{ prefix: 'app{1}:' }, /"prefix".*one hash slot/],
    [{ waitForReplicas: 1.5 }, /"waitForReplicas"/]
  ]
  for (const [opts, message] of cases) {
    t.throws(() => normalizeOptions(opts as never), { code: 'HEADROOM_CACHE_INVALID_OPTION', message }, String(message))
  }
  await t.rejects(buildApp(t, { l1: { maxEntries: 1.5 } }), errors.InvalidOption)
})

t.test('defaults are documented constants', async (t) => {
  const o = normalizeOptions({})
  t.equal(o.namespaces.get('default')!.ttl, DEFAULT_TTL_MS)
  t.equal(o.l1.maxTtl, DEFAULT_L1_MAX_TTL_MS)
  t.equal(o.namespaces.get('http-user')!.perUser, true)
})

t.test('bad keys and tags are programmer errors with a clear code', async (t) => {
  const app = await buildApp(t, {})
  await t.rejects(async () => app.cache.wrap('', () => 1), errors.InvalidKey)
  await t.rejects(async () => app.cache.wrap('k', () => 1, { tags: [''] }), errors.InvalidKey)
  await t.rejects(async () => app.cache.wrap('k', 'no' as never), TypeError)
})

t.test('without Redis the cache is L1 only and says so', async (t) => {
  const app = await buildApp(t, {})
  t.equal(await app.cache.wrap('k', () => 1), 1)
  t.equal(await health(app), 'pass')
  t.equal(app.cache.stats().redis, 'none')
  const names = (await getHub(app).registry.getMetricsAsJSON()).map((m) => m.name)
  for (const name of ['headroom_cache_hits_total', 'headroom_cache_misses_total', 'headroom_cache_stale_served_total',
    'headroom_cache_factory_calls_total', 'headroom_cache_factory_duration_seconds', 'headroom_cache_coalesced_waits_total',
    'headroom_cache_l2_errors_total', 'headroom_cache_l1_bytes', 'headroom_cache_degraded']) {
    t.ok(names.includes(name), name)
  }
})
