import { LogLines, testApp, type LogLine, type TestContext } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import headroomPool, { type PoolOptions } from '../src/index.js'

export interface Built {
  app: FastifyInstance
  logs: LogLine[]
}

/** an app with the pool registered, its log lines collected, closed at teardown */
export async function build (t: TestContext, options: PoolOptions, routes?: (app: FastifyInstance) => void): Promise<Built> {
  const logs = new LogLines()
  const app = testApp(t, { logger: { level: 'info', stream: logs.stream } })
  await app.register(headroomPool, options)
  routes?.(app)
  await app.ready()
  return { app, logs: logs.lines }
}

/** runs one statement on a connection of its own (not the pool's) */
export async function admin<R extends pg.QueryResultRow = pg.QueryResultRow> (url: string, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return await client.query<R>(sql, params)
  } finally {
    await client.end()
  }
}

/** the backend pids of the connections an app opened, found by its unique application_name */
export async function backends (url: string, applicationName: string): Promise<number[]> {
  const { rows } = await admin<{ pid: number }>(url, 'SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid', [applicationName])
  return rows.map((r) => r.pid)
}

let seq = 0
export function appName (prefix: string): string {
  return `hp-${prefix}-${process.pid}-${++seq}`
}

export function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] ?? 0
}
