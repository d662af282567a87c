/** the statement both variants run: a primary-key lookup on the scenario's own table */
export function lookupSql (env: NodeJS.ProcessEnv): { url: string, sql: string } {
  const table = env.POOL_BENCH_TABLE
  if (table === undefined || !/^[a-z0-9_]+$/.test(table)) throw new Error('POOL_BENCH_TABLE is not set by the scenario setup')
  return {
    url: env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    sql: `SELECT id, owner, balance FROM ${table} WHERE id = $1`
  }
}

export const POOL_MAX = 25
