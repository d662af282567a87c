import t from 'tap'
import { waitFor } from '@headroom/testing'
import { standalone } from './backends.js'
import { buildApp, engineOf } from './helpers.js'

/**
 * An invalidation whose Redis call failed is queued for replay. Until the
 * replay reaches Redis, L2 still holds the old value: reading it then would
 * put it back into this instance's L1, and this instance ignores its own bus
 * message when the replay finally publishes, so the old value would be served
 * until its L1 TTL ended (cache failover test, CI: 75 stale reads).
 *
 * The failure is made by making our own L2 wrapper's delete refuse once (Redis
 * itself is real and keeps the old value, as it does when the command never
 * left the client: an open circuit, a timed-out connection).
 */
t.test('an invalidation waiting for replay: no read uses the L2 value it removes, and the replay drops what L1 read meanwhile', async (t) => {
  const r = await standalone.connect(t)
  const app = await buildApp(t, { redis: await r.client(), prefix: r.prefix })
  const engine = engineOf(app)
  const l2 = engine.l2!
  let version = 1
  const read = () => app.cache.wrap('quote', () => ({ v: version }))

  t.same(await read(), { v: 1 }, 'v1 cached in both tiers')
  const original = l2.delete.bind(l2)
  let refused = 0
  l2.delete = async () => { refused++; throw new Error('refused (test)') }
  version = 2
  await app.cache.delete('quote')
  t.equal(refused, 1, 'the delete did not reach Redis')
  t.equal(app.cache.stats().pendingReplay, 1, 'and waits for replay')
  t.ok((await l2.read('default|s|quote', [])).entry?.raw.includes('"v":1'), 'Redis still holds v1')

  t.same(await read(), { v: 2 }, 'a read while the replay waits does not use the v1 in L2')
  t.same(await app.cache.get('quote'), { v: 2 }, 'nor does get')
  t.equal(app.cache.stats().pendingReplay, 1, 'the replay is still refused, so those reads ran while it waited')

  l2.delete = original
  await waitFor('the replay reached Redis', async () => app.cache.stats().pendingReplay === 0, 10_000, 20)
  version = 3
  // the factory's v2 went to L1 and L2 under the write path's generation guard;
  // after the replay, which deletes it from L2 and drops it from L1, v3 is computed
  t.same(await read(), { v: 3 }, 'after the replay, nothing from before it is served')
})
