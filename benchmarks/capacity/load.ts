/**
 * Load generators for the capacity run, on node:http with a bounded
 * keep-alive pool.
 *
 * Open model (`runOpen`): request i is *intended* at start + i / rate,
 * whatever happened to the ones before it, and its latency is measured from
 * that intended time, so a server that stalls is charged for every request
 * that queued behind the stall (no coordinated omission). The generator's
 * own lag (actual send − intended send) is reported: a figure is only valid
 * if the generator kept up.
 *
 * Closed model (`runClosed`): N workers, each sends its next request when the
 * previous one answers: throughput at concurrency N, for the USL fit.
 */
import http from 'node:http'
import { percentile } from './model.js'

export interface Req { kind: string, method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string }

export interface StepResult {
  rate: number
  durationS: number
  sent: number
  ok: number
  /** 5xx responses */
  e5xx: number
  /** 503s among them (pool queue full or acquire timeout) */
  e503: number
  /** 4xx responses (429 rate limited, …) */
  e4xx: number
  /** transport errors and timeouts */
  errors: number
  throughput: number
  /** mean latency, ms (Little's law) */
  mean: number
  p50: number
  p95: number
  p99: number
  max: number
  /** generator lag: how late the send call ran after its intended time */
  lagP99: number
  lagMax: number
  byKind: Record<string, number>
  /** response body bytes received, by kind */
  bytesByKind: Record<string, number>
}

export interface LoadOptions {
  /** bounded pool of keep-alive connections @default 256 */
  connections?: number
  /** a request not answered in this time counts as an error, its latency as the timeout @default 5000 */
  timeoutMs?: number
}

interface Outcome { latency: number, status: number, kind: string, bytes: number }

function send (agent: http.Agent, base: URL, req: Req, timeoutMs: number, intended: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false
    let bytes = 0
    const finish = (status: number) => {
      if (done) return
      done = true
      resolve({ latency: performance.now() - intended, status, kind: req.kind, bytes })
    }
    const r = http.request({
      agent,
      host: base.hostname,
      port: base.port,
      method: req.method,
      path: req.path,
      headers: req.body === undefined ? req.headers : { ...req.headers, 'content-length': Buffer.byteLength(req.body) }
    }, (res) => {
      res.on('data', (chunk: Buffer) => { bytes += chunk.length })
      res.once('end', () => finish(res.statusCode ?? 0))
      res.once('error', () => finish(0))
    })
    r.setTimeout(timeoutMs, () => { r.destroy(); finish(0) })
    r.once('error', () => finish(0))
    r.end(req.body)
  })
}

function summarize (rate: number, durationS: number, outcomes: Outcome[], lags: number[], byKind: Record<string, number>): StepResult {
  const lat = outcomes.map((o) => o.latency).sort((a, b) => a - b)
  const sortedLags = [...lags].sort((a, b) => a - b)
  let ok = 0; let e5xx = 0; let e503 = 0; let e4xx = 0; let errors = 0
  const bytesByKind: Record<string, number> = {}
  for (const o of outcomes) {
    bytesByKind[o.kind] = (bytesByKind[o.kind] ?? 0) + o.bytes
    if (o.status === 0) errors++
    else if (o.status >= 500) { e5xx++; if (o.status === 503) e503++ } else if (o.status >= 400) e4xx++
    else ok++
  }
  return {
    rate,
    durationS,
    sent: outcomes.length,
    ok,
    e5xx,
    e503,
    e4xx,
    errors,
    throughput: ok / durationS,
    mean: lat.length > 0 ? lat.reduce((a, b) => a + b, 0) / lat.length : Number.NaN,
    p50: percentile(lat, 50),
    p95: percentile(lat, 95),
    p99: percentile(lat, 99),
    max: lat.at(-1) ?? Number.NaN,
    lagP99: percentile(sortedLags, 99),
    lagMax: sortedLags.at(-1) ?? 0,
    byKind,
    bytesByKind
  }
}

/** `rate` requests per second for `durationS` seconds, each latency from its intended send time. */
export async function runOpen (baseUrl: string, rate: number, durationS: number, next: () => Req, opts: LoadOptions = {}): Promise<StepResult> {
  const base = new URL(baseUrl)
  const timeoutMs = opts.timeoutMs ?? 5000
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections ?? 256 })
  const total = Math.max(1, Math.round(rate * durationS))
  const interval = 1000 / rate
  const pending: Array<Promise<Outcome>> = []
  const lags: number[] = []
  const byKind: Record<string, number> = {}
  const start = performance.now() + 5
  let i = 0
  try {
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now()
        while (i < total && start + i * interval <= now) {
          const intended = start + i * interval
          const req = next()
          byKind[req.kind] = (byKind[req.kind] ?? 0) + 1
          lags.push(performance.now() - intended)
          pending.push(send(agent, base, req, timeoutMs, intended))
          i++
        }
        if (i >= total) return resolve()
        // wake up for the next intended send (timers are ~1 ms coarse: the lag says how coarse)
        setTimeout(tick, Math.max(0, start + i * interval - performance.now() - 0.5))
      }
      tick()
    })
    const outcomes = await Promise.all(pending)
    return summarize(rate, durationS, outcomes, lags, byKind)
  } finally {
    agent.destroy()
  }
}

/** `concurrency` workers back to back for `durationS` seconds; latency from each actual send. */
export async function runClosed (baseUrl: string, concurrency: number, durationS: number, next: () => Req, opts: LoadOptions = {}): Promise<StepResult> {
  const base = new URL(baseUrl)
  const timeoutMs = opts.timeoutMs ?? 5000
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const outcomes: Outcome[] = []
  const byKind: Record<string, number> = {}
  const end = performance.now() + durationS * 1000
  const worker = async () => {
    while (performance.now() < end) {
      const req = next()
      byKind[req.kind] = (byKind[req.kind] ?? 0) + 1
      outcomes.push(await send(agent, base, req, timeoutMs, performance.now()))
    }
  }
  const started = performance.now()
  try {
    await Promise.all(Array.from({ length: concurrency }, worker))
  } finally {
    agent.destroy()
  }
  const elapsed = (performance.now() - started) / 1000
  const r = summarize(0, elapsed, outcomes, [0], byKind)
  return { ...r, rate: r.throughput }
}
