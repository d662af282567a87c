import { setTimeout as sleep } from 'node:timers/promises'

export interface CategoryTotal { category: string, spentCents: number }

export interface InsightInput {
  /** spending per category over the last 30 days and the 30 before */
  current: CategoryTotal[]
  previous: CategoryTotal[]
  incomeCents: number
  spentCents: number
  /** transactions in the 60 days looked at */
  transactions: number
}

export interface Insights {
  generatedAt: string
  /** how many transactions they rest on; 0: nothing to say yet (and nothing worth caching for an hour) */
  basedOn: number
  savingsRate: number | null
  topCategories: CategoryTotal[]
  messages: string[]
}

/**
 * The "AI" of the seed application, simulated: a model call that takes
 * `costMs` (hundreds of milliseconds, as an LLM call does) and turns the
 * user's spending into a few sentences. What matters for the example is the
 * cost profile — slow and worth computing once per user per hour — not the
 * prose. `calls` counts the expensive invocations, for tests and the load report.
 */
export class InsightsModel {
  calls = 0
  readonly #costMs: number
  constructor (costMs: number) {
    this.#costMs = costMs
  }

  async generate (input: InsightInput): Promise<Insights> {
    if (input.transactions === 0) {
      // no data, no model call: a real app would not pay an LLM to say "nothing yet"
      return { generatedAt: new Date().toISOString(), basedOn: 0, savingsRate: null, topCategories: [], messages: ['Not enough activity in the last 30 days for insights yet.'] }
    }
    this.calls++
    if (this.#costMs > 0) await sleep(this.#costMs)
    const messages: string[] = []
    const previous = new Map(input.previous.map((c) => [c.category, c.spentCents]))
    for (const c of input.current.slice(0, 3)) {
      const before = previous.get(c.category)
      if (before && before > 0) {
        const change = Math.round(((c.spentCents - before) / before) * 100)
        if (Math.abs(change) >= 10) messages.push(`You spent ${Math.abs(change)}% ${change > 0 ? 'more' : 'less'} on ${c.category} than in the previous 30 days.`)
      } else {
        messages.push(`${c.category} is new among your top expenses this month.`)
      }
    }
    const savingsRate = input.incomeCents > 0 ? Math.round(((input.incomeCents - input.spentCents) / input.incomeCents) * 1000) / 1000 : null
    if (savingsRate !== null) {
      messages.push(savingsRate >= 0.2
        ? `You saved ${Math.round(savingsRate * 100)}% of your income: above the 20% rule of thumb.`
        : `You saved ${Math.round(savingsRate * 100)}% of your income; 20% is a common target.`)
    }
    if (messages.length === 0) messages.push('Not enough activity in the last 30 days for insights yet.')
    return { generatedAt: new Date().toISOString(), basedOn: input.transactions, savingsRate, topCategories: input.current.slice(0, 5), messages }
  }
}
