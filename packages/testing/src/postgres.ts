import pg from 'pg'
import { databaseUrl } from './env.js'
import { uniqueId } from './ids.js'
import type { TestContext } from './teardown.js'

export interface IsolatedSchema {
  /** the schema's name, also first on the search_path of `url` */
  schema: string
  /** a connection string whose sessions use the schema by default */
  url: string
  /** pg.Pool / pg.Client options equivalent to `url` */
  config: pg.ClientConfig
}

export interface IsolatedDatabase {
  database: string
  url: string
}

function withParam (url: string, key: string, value: string): string {
  const u = new URL(url)
  u.searchParams.set(key, value)
  return u.toString()
}

async function admin<T> (url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/**
 * A fresh schema in the shared test database, dropped (with everything in it)
 * at teardown. Connections made from `url` or `config` see only their own
 * tables unless they name another schema, so test files can run in parallel.
 */
export async function isolatedSchema (t: TestContext, baseUrl = databaseUrl()): Promise<IsolatedSchema> {
  const schema = uniqueId('t')
  await admin(baseUrl, (c) => c.query(`CREATE SCHEMA "${schema}"`))
  t.teardown(() => admin(baseUrl, (c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)))
  const options = `-c search_path=${schema}`
  return {
    schema,
    url: withParam(baseUrl, 'options', options),
    config: { connectionString: baseUrl, options }
  }
}

/**
 * A fresh database on the shared server, dropped at teardown (connections
 * still open are terminated). For tests that need database-wide state:
 * pg_stat_* views, extensions, roles.
 */
export async function isolatedDatabase (t: TestContext, baseUrl = databaseUrl()): Promise<IsolatedDatabase> {
  const database = uniqueId('db')
  await admin(baseUrl, (c) => c.query(`CREATE DATABASE "${database}" TEMPLATE template0`))
  t.teardown(() => admin(baseUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)))
  const u = new URL(baseUrl)
  u.pathname = `/${database}`
  return { database, url: u.toString() }
}
