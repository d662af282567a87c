import type { FastifyPluginAsync } from 'fastify'
import { requireCsrf, userOf } from '../auth.js'
import type { Deps } from '../deps.js'
import { AccountNotFound, BadCursor, NothingToChange, TransactionNotFound, NoSymbols, QuotesUnavailable, UnknownSymbol } from '../errors.js'
import { SYMBOLS, type Quote } from '../market.js'
import {
  ACCOUNT_KINDS, createAccount, createTransaction, decodeCursor, insightInput, listAccounts, listTransactions,
  portfolioSummary, trends, updateTransaction, type AccountKind, type TransactionChange
} from '../repo.js'
import { ID, text, TIMESTAMP } from '../schemas.js'

const account = {
  type: 'object',
  properties: { id: { type: 'string' }, name: { type: 'string' }, kind: { type: 'string' }, currency: { type: 'string' } }
} as const
const transaction = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    accountId: { type: 'string' },
    amountCents: { type: 'integer' },
    category: { type: 'string' },
    description: { type: 'string' },
    occurredAt: { type: 'string', format: 'date-time' }
  }
} as const

// ±10 million in cents (the column is a bigint): a typo guard, not a business rule.
// A JSON number: bodies are not coerced, so "5" and true are refused (schemas.ts)
const AMOUNT_CENTS = { type: 'integer', minimum: -1_000_000_000, maximum: 1_000_000_000, not: { const: 0 } } as const
/** @default 366: the longest period /api/trends charts, a year of days */
export const MAX_TREND_DAYS = 366

/** The user's financial data: every query is scoped by the session's user id, never by an id from the request alone. */
export const financeRoutes: FastifyPluginAsync<{ deps: Deps, insightsRouteConfig?: Record<string, unknown> }> = async (app, { deps, insightsRouteConfig = {} }) => {
  const { db: dbFor, caches, market, insights } = deps

  app.get('/api/accounts', { schema: { response: { 200: { type: 'object', properties: { items: { type: 'array', items: account } } } } } },
    async (request) => ({ items: await listAccounts(dbFor(request), userOf(request)) }))

  app.post<{ Body: { name: string, kind: AccountKind } }>('/api/accounts', {
    preHandler: requireCsrf,
    schema: {
      body: {
        type: 'object',
        required: ['name', 'kind'],
        additionalProperties: false,
        properties: { name: text(1, 100), kind: { type: 'string', enum: ACCOUNT_KINDS } }
      },
      response: { 201: account }
    }
  }, async (request, reply) => {
    const userId = userOf(request)
    const created = await createAccount(dbFor(request), userId, request.body)
    await caches.invalidateUser(userId)
    reply.code(201)
    return created
  })

  app.get<{ Querystring: { limit: number, cursor?: string } }>('/api/transactions', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, cursor: { type: 'string', maxLength: 200 } }
      },
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: transaction }, next: { type: ['string', 'null'] } } } }
    }
  }, async (request) => {
    const userId = userOf(request)
    let cursor
    if (request.query.cursor !== undefined) {
      cursor = decodeCursor(request.query.cursor)
      if (!cursor) throw new BadCursor()
    }
    return listTransactions(dbFor(request), userId, { limit: request.query.limit, cursor })
  })

  app.post<{ Body: { accountId: string, amountCents: number, category: string, description?: string, occurredAt?: string } }>('/api/transactions', {
    preHandler: requireCsrf,
    schema: {
      body: {
        type: 'object',
        required: ['accountId', 'amountCents', 'category'],
        additionalProperties: false,
        properties: {
          accountId: ID,
          amountCents: AMOUNT_CENTS,
          category: text(1, 50),
          description: text(0, 200),
          // years 1900–9999, offsets up to ±14:00
          occurredAt: TIMESTAMP
        }
      },
      response: { 201: transaction }
    }
  }, async (request, reply) => {
    const userId = userOf(request)
    const body = request.body
    const created = await createTransaction(dbFor(request), userId, {
      accountId: body.accountId,
      amountCents: body.amountCents,
      category: body.category.toLowerCase(),
      description: body.description ?? '',
      occurredAt: body.occurredAt ?? new Date().toISOString()
    })
    if (!created) throw new AccountNotFound(body.accountId)
    // before answering: the client's next summary read must already see this write
    await caches.invalidateUser(userId)
    reply.code(201)
    return created
  })

  app.patch<{ Params: { id: string }, Body: TransactionChange }>('/api/transactions/:id', {
    preHandler: requireCsrf,
    schema: {
      params: { type: 'object', required: ['id'], properties: { id: ID } },
      body: {
        type: 'object',
        additionalProperties: false,
        // the same bounds as POST: an edit cannot store what a create would refuse
        properties: { amountCents: AMOUNT_CENTS, category: text(1, 50), description: text(0, 200), occurredAt: TIMESTAMP }
      },
      response: { 200: transaction }
    }
  }, async (request) => {
    const userId = userOf(request)
    const { amountCents, category, description, occurredAt } = request.body
    if (amountCents === undefined && category === undefined && description === undefined && occurredAt === undefined) throw new NothingToChange()
    const change = { amountCents, category: category?.toLowerCase(), description, occurredAt }
    const updated = await updateTransaction(dbFor(request), userId, request.params.id, change)
    if (!updated) throw new TransactionNotFound(request.params.id)
    await caches.invalidateUser(userId)
    return updated
  })

  // Not cached: one range scan of the user's (user_id, occurred_at) index per
  // chart load, read after the user's own writes (a cached copy would need a
  // namespace per period and the same invalidation as the summary's).
  app.get<{ Querystring: { days: number } }>('/api/trends', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { days: { type: 'integer', minimum: 7, maximum: MAX_TREND_DAYS, default: 30 } }
      }
    }
  }, async (request, reply) => {
    const userId = userOf(request)
    reply.header('cache-control', 'private, no-store')
    return trends(dbFor(request), userId, request.query.days)
  })

  app.get('/api/summary', async (request, reply) => {
    const userId = userOf(request)
    reply.header('cache-control', 'private, no-store')
    return caches.summary(userId, () => portfolioSummary(dbFor(request), userId))
  })

  app.get('/api/insights', { config: insightsRouteConfig }, async (request, reply) => {
    const userId = userOf(request)
    reply.header('cache-control', 'private, no-store')
    return caches.insights(userId, async () => insights.generate(await insightInput(dbFor(request), userId)))
  })

  const known = new Set<string>(SYMBOLS)
  app.get<{ Querystring: { symbols?: string } }>('/api/quotes', {
    schema: { querystring: { type: 'object', properties: { symbols: { type: 'string', maxLength: 200 } } } }
  }, async (request, reply) => {
    userOf(request)
    const listed = request.query.symbols
    const symbols = listed === undefined
      ? SYMBOLS.slice(0, 5)
      : [...new Set(listed.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean))]
    // `?symbols=` or `?symbols=,,` asks for nothing: a mistake of the client, not an outage of the provider
    if (symbols.length === 0) throw new NoSymbols()
    const unknown = symbols.find((s) => !known.has(s))
    if (unknown !== undefined) throw new UnknownSymbol(unknown.slice(0, 12), SYMBOLS.join(', '))
    const settled = await Promise.allSettled(symbols.map((s) => caches.quote(s, () => market.quote(s))))
    const quotes: Quote[] = []
    const unavailable: string[] = []
    settled.forEach((r, i) => r.status === 'fulfilled' ? quotes.push(r.value) : unavailable.push(symbols[i]!))
    if (quotes.length === 0) {
      reply.header('retry-after', '5')
      throw new QuotesUnavailable()
    }
    return { quotes, unavailable }
  })
}
