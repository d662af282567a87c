import { setTimeout as sleep } from 'node:timers/promises'

/** The symbols the simulated exchange lists. */
export const SYMBOLS = ['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'NVDA', 'META', 'TSLA', 'BRK.B', 'JPM', 'V', 'VTI', 'VOO', 'BND', 'VXUS', 'QQQ'] as const

export interface Quote {
  symbol: string
  price: number
  change: number
  currency: 'USD'
  asOf: string
}

export class MarketUnavailableError extends Error {
  constructor (message = 'the market data provider did not answer') {
    super(message)
    this.name = 'MarketUnavailableError'
  }
}

export interface MarketOptions {
  latencyMs: number
  failureRate: number
  random?: () => number
}

/**
 * An external market-data API, simulated in-process: every call costs
 * `latencyMs` (±50 %) and fails with probability `failureRate`, as a real
 * provider does under load. Prices follow a deterministic walk over time, so
 * two instances quote the same price at the same second.
 */
export class MarketClient {
  calls = 0
  failures = 0
  readonly #opts: MarketOptions
  readonly #random: () => number

  constructor (opts: MarketOptions) {
    this.#opts = opts
    this.#random = opts.random ?? Math.random
  }

  async quote (symbol: string): Promise<Quote> {
    this.calls++
    const { latencyMs, failureRate } = this.#opts
    if (latencyMs > 0) await sleep(latencyMs * (0.5 + this.#random()))
    if (this.#random() < failureRate) {
      this.failures++
      throw new MarketUnavailableError()
    }
    const now = Date.now()
    return { symbol, ...priceAt(symbol, now), currency: 'USD', asOf: new Date(now).toISOString() }
  }
}

function hash (s: string): number {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return (h >>> 0) / 2 ** 32
}

function priceAt (symbol: string, ms: number): { price: number, change: number } {
  const base = 20 + hash(symbol) * 480
  const t = ms / 60_000
  const drift = (m: number) => Math.sin(m / 7 + hash(symbol + 'p') * 6) * 0.03 + Math.sin(m / 97) * 0.08
  const price = base * (1 + drift(t))
  const open = base * (1 + drift(t - 60 * 8))
  return { price: round2(price), change: round2(price - open) }
}

function round2 (n: number): number {
  return Math.round(n * 100) / 100
}
