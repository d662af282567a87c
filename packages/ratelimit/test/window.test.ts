import t from 'tap'
import { type FastifyInstance } from 'fastify'
import fastifyRateLimit from '@fastify/rate-limit'
import { isolatedRedis, sleep, testApp } from '@headroom/testing'
import { LocalWindow } from '../src/index.js'
import { buildApp, ready, redisClient } from './helpers.js'

const W = 2000
const L = 10

interface Entry { sent: number, recv: number, status: number }

/**
 * The most admissions any closed window of length W certainly contains: an
 * admission happened between its request's send and receive times, so a
 * request sent at or after `start` and answered by `start + W` was admitted
 * inside [start, start + W]. Every admitted request's send time is tried as a
 * start. Sound (never blames a correct limiter), and a fixed window's burst
 * across its boundary shows up at once.
 */
function maxInWindow (log: Entry[]): number {
  const admitted = log.filter((e) => e.status === 200)
  let max = 0
  for (const start of admitted) {
    const inside = admitted.filter((e) => e.sent >= start.sent && e.recv <= start.sent + W).length
    if (inside > max) max = inside
  }
  return max
}

async function send (apps: FastifyInstance[], log: Entry[], i: number): Promise<void> {
  const sent = performance.now()
  const res = await (apps[i % apps.length] as FastifyInstance).inject('/')
  log.push({ sent, recv: performance.now(), status: res.statusCode })
}

t.test('requests straddling window boundaries: no rolling window ever admits more than the limit', async (t) => {
  const { prefix, url } = await isolatedRedis(t)
  const redis = await ready(redisClient(t, url))
  // three instances of ours, and @fastify/rate-limit's fixed window as the control the check must catch
  const ours = await Promise.all([1, 2, 3].map(() => buildApp(t, { redis, prefix, limit: L, window: W, buckets: 20 })))
  const control = testApp(t)
  await control.register(fastifyRateLimit, { redis, max: L, timeWindow: W, nameSpace: `${prefix}control:` })
  control.get('/', async () => ({ ok: true }))
  await control.ready()

  const oursLog: Entry[] = []
  const controlLog: Entry[] = []
  const inflight: Promise<void>[] = []
  const fire = (n: number) => {
    for (let i = 0; i < n; i++) {
      inflight.push(send(ours, oursLog, i), send([control], controlLog, i))
    }
  }
  const t0 = performance.now()
  const at = async (ms: number) => { const wait = t0 + ms - performance.now(); if (wait > 0) await sleep(wait) }
  // a first hit opens the fixed window; bursts land just before and just after its end and the next ones,
  // with a trickle in between so every sub-window sees traffic
  const bursts = new Map([[0, 1], [W - 150, 15], [W + 60, 15], [1.5 * W, 15], [2 * W + 30, 15], [3 * W - 120, 15], [3 * W + 40, 15]])
  for (let ms = 0; ms <= 3.2 * W; ms += 40) {
    await at(ms)
    const due = [...bursts].filter(([when]) => when <= ms && when > ms - 40)
    for (const [, n] of due) fire(n)
    fire(1)
  }
  await Promise.all(inflight)

  const oursMax = maxInWindow(oursLog)
  const controlMax = maxInWindow(controlLog)
  t.ok(oursMax <= L, `headroom: at most ${L} admissions in any ${W} ms window (saw ${oursMax})`)
  t.ok(controlMax > L, `the check catches a fixed window's boundary burst (@fastify/rate-limit: ${controlMax} in one window)`)
  const admitted = oursLog.filter((e) => e.status === 200).length
  t.ok(admitted > 2 * L, `the quota refills as the window slides (${admitted} admitted over ${3.2 * W} ms)`)
  t.equal(oursLog.filter((e) => e.status !== 200 && e.status !== 429).length, 0, 'only 200 and 429')
})

t.test('the in-process window on a fake clock: every rolling window, exactly', async (t) => {
  let now = 1_000_000
  const local = new LocalWindow(10, () => now)
  const g = 100
  const k = 20
  let seed = 42
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  const admitted: number[] = []
  let bad = 0
  for (let i = 0; i < 5000; i++) {
    now += Math.floor(random() * (random() < 0.1 ? 400 : 8))
    const n = 1 + Math.floor(random() * 3)
    const take = local.take('k', L, g, k, n)
    for (let j = 0; j < take.admitted; j++) admitted.push(now)
    if (take.admitted > n || take.retryMs <= 0) bad++
  }
  t.equal(bad, 0, 'never more admitted than asked, always a positive retry time')
  let worst = 0
  for (let i = 0; i < admitted.length; i++) {
    const end = admitted[i] as number
    // admissions in the half-open window (end - W, end]
    let inside = 0
    for (let j = i; j >= 0 && (admitted[j] as number) > end - W; j--) inside++
    for (let j = i + 1; j < admitted.length && admitted[j] === end; j++) inside++
    worst = Math.max(worst, inside)
  }
  t.equal(worst, L, `the busiest rolling window holds exactly the limit (${admitted.length} admitted)`)
})
