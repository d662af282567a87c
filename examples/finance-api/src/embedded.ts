import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

export interface EmbeddedPostgres {
  /** a postgres:// URL on a free loopback port */
  url: string
  close (): Promise<void>
}

/**
 * PGlite (PostgreSQL compiled to WebAssembly, in this process) served over the
 * PostgreSQL wire protocol on a free loopback port, so the app reaches it with
 * the same pg + pool code it uses for a real server: nothing in the request
 * path knows it is embedded. The socket server multiplexes connections onto
 * PGlite's single session and holds the others while one is inside a
 * transaction, so transactions stay isolated.
 */
export async function startEmbeddedPostgres (options: { dataDir?: string | undefined, maxConnections?: number } = {}): Promise<EmbeddedPostgres> {
  const db = await PGlite.create(options.dataDir === undefined ? undefined : { dataDir: options.dataDir })
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: options.maxConnections ?? 100 })
  try {
    await server.start()
  } catch (err) {
    await db.close()
    throw err
  }
  const address = server.getServerConn()
  return {
    url: `postgres://postgres@${address}/postgres`,
    async close () {
      await server.stop()
      await db.close()
    }
  }
}
