import pg from 'pg'

/** @default 10000: how long the start waits for PostgreSQL to accept a connection (a host that drops packets) */
export const DATABASE_CONNECT_TIMEOUT_MS = 10_000

/**
 * DATABASE_URL cannot be used: the one line the server exits with (exit
 * code 1). Names the variable, the host, port and database (never the
 * password), and what went wrong in words; the driver's error is the cause.
 */
export class DatabaseUnreachableError extends Error {
  constructor (message: string, options: { cause: unknown }) {
    super(message, options)
    this.name = 'DatabaseUnreachableError'
  }
}

/**
 * Connects once to DATABASE_URL and runs `SELECT 1`, before migrations and
 * the pool: a wrong host, port, database name, user or password, or a
 * PostgreSQL that is down, ends the start here with one clear line instead
 * of a driver's stack trace. The server does not wait and retry: see the
 * README ("A database that cannot be reached at start") for why.
 */
export async function checkDatabase (connectionString: string, timeoutMs = DATABASE_CONNECT_TIMEOUT_MS): Promise<void> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: timeoutMs })
  // an error after connect (the server closing it) must not be an unhandled 'error' event
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
  } catch (err) {
    throw new DatabaseUnreachableError(describe(err, connectionString, timeoutMs), { cause: err })
  } finally {
    await client.end().catch(() => {})
  }
}

function describe (err: unknown, connectionString: string, timeoutMs: number): string {
  const { host, port, database, user } = target(connectionString)
  const where = `${host}:${port}`
  const e = err as { code?: string, message?: string }
  const why = ((): string => {
    switch (e.code) {
      case 'ECONNREFUSED': return `nothing accepts connections at ${where} (connection refused): is PostgreSQL running, and are the host and port right?`
      case 'ENOTFOUND':
      case 'EAI_AGAIN': return `the host "${host}" is not found (DNS): is the host name right?`
      case 'ETIMEDOUT':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH': return `${where} cannot be reached (${e.code}): is the host right, and does the network let this instance reach it?`
      case '3D000': return `the database "${database}" does not exist on ${where}: is the database name right (the path of the URL)?`
      case '28P01':
      case '28000': return `PostgreSQL on ${where} refused the user "${user}" (${e.message}): are the user and password right?`
      case '57P03': return `PostgreSQL on ${where} does not accept connections yet (${e.message})`
      case '53300': return `PostgreSQL on ${where} has no connection slot left (${e.message})`
    }
    // pg's own timeout (connectionTimeoutMillis): a host that accepts and never answers, or drops packets
    if (/timeout/i.test(e.message ?? '')) return `no answer from ${where} within ${timeoutMs} ms: are the host and port right, and is PostgreSQL up?`
    return `${where}, database "${database}": ${e.code !== undefined ? `${e.code} ` : ''}${e.message ?? String(err)}`
  })()
  return `DATABASE_URL: cannot use the database: ${why}`
}

function target (connectionString: string): { host: string, port: string, database: string, user: string } {
  try {
    const url = new URL(connectionString)
    return {
      host: decodeURIComponent(url.hostname) || 'localhost',
      port: url.port || '5432',
      database: decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username) || 'postgres',
      user: decodeURIComponent(url.username) || 'postgres'
    }
  } catch {
    return { host: '?', port: '?', database: '?', user: '?' }
  }
}
