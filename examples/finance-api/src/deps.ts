import type { FastifyRequest } from 'fastify'
import type { Config } from './config.js'
import type { Db } from './db.js'
import type { Insights, InsightsModel } from './insights.js'
import type { MarketClient, Quote } from './market.js'
import type { Summary } from './repo.js'

/**
 * The caches the routes use, by purpose. server.ts builds them on
 * @headroom/cache namespaces; the routes only say what to load on a miss.
 */
export interface Caches {
  /** per user, invalidated by that user's writes */
  summary (userId: string, load: () => Promise<Summary>): Promise<Summary>
  /** after a write of the user: drop what it made stale (the summary, empty insights) on every instance */
  invalidateUser (userId: string): Promise<void>
  /** seconds, stale-if-error: a failing provider still gets a recent quote served */
  quote (symbol: string, load: () => Promise<Quote>): Promise<Quote>
  /** an hour, computed once across instances */
  insights (userId: string, load: () => Promise<Insights>): Promise<Insights>
}

/** What the auth routes need from the session layer beyond `request.session`. */
export interface SessionControl {
  /** ends every session of the user, on every instance; returns how many */
  logoutEverywhere (request: FastifyRequest, userId: string): Promise<number>
}

export interface Deps {
  config: Config
  /** the database for this request: with replicas, a read-your-writes scope kept in the session */
  db: (request: FastifyRequest) => Db
  caches: Caches
  sessions: SessionControl
  market: MarketClient
  insights: InsightsModel
}
