/**
 * The example's authenticated summary and transaction-list reads written the
 * way an Express team would: express-session + connect-redis (as its README
 * configures it), express-rate-limit + rate-limit-redis, helmet, a pg Pool,
 * no cache. The SQL is the example's own: portfolioSummary, listTransactions
 * and findCredentials are imported from its repo.ts, and passwords are
 * checked with its verifyPassword, so the seeded users log in here too.
 * GET /__queries reports the query counter (queries.ts).
 */
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { RedisStore as SessionStore } from 'connect-redis'
import express, { type NextFunction, type Request, type Response } from 'express'
import { rateLimit } from 'express-rate-limit'
import session from 'express-session'
import helmet from 'helmet'
import pg from 'pg'
import { RedisStore as LimitStore, type RedisReply } from 'rate-limit-redis'
import { createClient } from 'redis'
import type { Db } from '../../src/db.js'
import { verifyPassword } from '../../src/passwords.js'
import { decodeCursor, findCredentials, listTransactions, portfolioSummary } from '../../src/repo.js'
import { countQueries } from './queries.js'

declare module 'express-session' {
  interface SessionData { userId: string }
}

export default async function build (env: NodeJS.ProcessEnv) {
  const queries = countQueries()
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL })
  // the example's repo functions take its Db; a pg Pool is all they need
  const query = <R>(sql: string, params?: unknown[]) => pool.query(sql, params) as unknown as Promise<{ rows: R[], rowCount: number | null }>
  const db: Db = {
    query,
    read: query,
    transaction: () => { throw new Error('not used by these routes') }
  }
  const redis = createClient({ url: env.REDIS_URL || 'redis://127.0.0.1:6379' })
  await redis.connect()
  const prefix = env.REDIS_KEY_PREFIX ?? 'express-finance:'

  const app = express()
  app.set('trust proxy', 'loopback')
  app.disable('x-powered-by')
  app.use(helmet())
  app.use(rateLimit({
    windowMs: Number(env.RATE_LIMIT_WINDOW_MS || 60_000),
    limit: Number(env.RATE_LIMIT_MAX || 100),
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    store: new LimitStore({ prefix: `${prefix}rl:`, sendCommand: (...args: string[]) => redis.sendCommand(args) as Promise<RedisReply> })
  }))
  app.use(express.json({ limit: '16kb' }))
  app.use(session({
    store: new SessionStore({ client: redis, prefix: `${prefix}sess:` }),
    secret: env.SESSION_SECRET ?? 'change me',
    name: 'sid',
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, secure: true, sameSite: 'lax', maxAge: 24 * 3600 * 1000 }
  }))

  app.post('/api/auth/login', (req, res, next) => {
    const { email, password } = (req.body ?? {}) as { email?: unknown, password?: unknown }
    if (typeof email !== 'string' || typeof password !== 'string') {
      res.status(400).json({ error: 'email and password are required' })
      return
    }
    findCredentials(db, email)
      .then(async (found) => found && await verifyPassword(password, found.passwordHash) ? found : undefined)
      .then((found) => {
        if (!found) {
          res.status(401).json({ error: 'wrong email or password' })
          return
        }
        req.session.regenerate((err) => {
          if (err) return next(err)
          req.session.userId = found.id
          res.json({ user: { id: found.id, email: found.email, name: found.name } })
        })
      }, next)
  })

  function requireUser (req: Request, res: Response, next: NextFunction): void {
    if (req.session.userId === undefined) res.status(401).json({ error: 'not logged in' })
    else next()
  }

  app.get('/api/summary', requireUser, (req, res, next) => {
    portfolioSummary(db, req.session.userId!).then((s) => res.json(s), next)
  })

  app.get('/api/transactions', requireUser, (req, res, next) => {
    const limit = req.query.limit === undefined ? 20 : Number(req.query.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      res.status(400).json({ error: 'limit must be an integer from 1 to 100' })
      return
    }
    const cursor = typeof req.query.cursor === 'string' ? decodeCursor(req.query.cursor) : undefined
    if (req.query.cursor !== undefined && !cursor) {
      res.status(400).json({ error: 'bad cursor' })
      return
    }
    listTransactions(db, req.session.userId!, { limit, cursor }).then((page) => res.json(page), next)
  })

  app.get('/__queries', (_req, res) => { res.json({ queries: queries() }) })

  let closing = false
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    // at close, reads still in flight on cut connections find the pool ended: not worth a log line
    if (!closing) console.error(err)
    res.status(500).json({ error: 'internal error' })
  })

  let server: Server | undefined
  // the harness's server interface (Fastify's listen/close)
  return {
    async listen ({ port, host }: { port: number, host: string }): Promise<string> {
      server = app.listen(port, host)
      await once(server, 'listening')
      return `http://${host}:${(server.address() as AddressInfo).port}`
    },
    async close (): Promise<void> {
      closing = true
      if (server) {
        server.closeAllConnections()
        await new Promise((resolve) => server!.close(resolve))
      }
      await pool.end()
      await redis.quit()
    }
  }
}
