/**
 * Capacity of the shared resources themselves, on this machine, for the
 * shapes the app issues: pgbench running the example's summary query (its
 * text caught in pg_stat_activity while the app ran it, so it is the
 * statement the app sends, not a copy) at several client counts, and
 * redis-benchmark running the rate limiter's script and the session store's
 * reads and writes (keys under bench:, apart from the app's). Both tools run on core 0, beside the load generator;
 * the servers float.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { PrivatePostgres } from '@headroom/testing'
import { Redis } from 'ioredis'
import { SLIDING_WINDOW_LUA, windowArgs } from '../../packages/ratelimit/src/window.js'
import { DATABASE } from './fixture.js'
import { pinned } from './process.js'

const run = promisify(execFile)
const onCore0 = (cmd: string, args: string[]) => pinned ? run('taskset', ['-c', '0', cmd, ...args]) : run(cmd, args)

export interface PgbenchPoint { clients: number, tps: number, latencyMs: number }

export async function pgbench (server: PrivatePostgres, statement: string, users: { first: number, count: number }, clients: number[], seconds: number): Promise<PgbenchPoint[]> {
  const dir = mkdtempSync(join(tmpdir(), 'capacity-pgbench-'))
  try {
    const script = join(dir, 'summary.sql')
    writeFileSync(script, `\\set uid random(${users.first}, ${users.first + users.count - 1})\n${statement.replace(/\s+/g, ' ').replaceAll('$1', ':uid')};\n`)
    const out: PgbenchPoint[] = []
    for (const c of clients) {
      const { stdout } = await onCore0('pgbench', ['-n', '-h', server.host, '-p', String(server.port), '-U', 'postgres', '-M', 'prepared',
        '-c', String(c), '-j', String(Math.min(c, 2)), '-T', String(seconds), '-f', script, DATABASE])
      const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1])
      const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1])
      if (!Number.isFinite(tps)) throw new Error(`pgbench printed no tps:\n${stdout}`)
      out.push({ clients: c, tps, latencyMs })
    }
    return out
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface RedisBenchRow { shape: string, opsPerS: number }

/**
 * Requests/s of one Redis for each shape, 50 connections, keys spread over
 * 100,000 users: the rate limiter's sliding-window script (EVALSHA: 500 per
 * 15 minutes in 15 sub-windows of 60 s, one request), a
 * session read (GET) and a session write with its TTL (SET … PX).
 */
export async function redisBench (url: string, requests: number): Promise<RedisBenchRow[]> {
  const u = new URL(url)
  const c = new Redis(url, { lazyConnect: true })
  await c.connect()
  const sha = await c.script('LOAD', SLIDING_WINDOW_LUA) as string
  c.disconnect()
  const shapes: Array<[string, string[]]> = [
    ['rate limit: EVALSHA sliding window', ['EVALSHA', sha, '1', 'bench:rl:__rand_int__', ...windowArgs({ limit: 500, granularityMs: 60_000, buckets: 15, windowMs: 900_000 }, 1).map(String)]],
    ['session read: GET', ['GET', 'bench:sess:__rand_int__']],
    ['session write: SET … PX', ['SET', 'bench:sess:__rand_int__', 'x'.repeat(300), 'PX', '86400000']]
  ]
  const out: RedisBenchRow[] = []
  for (const [shape, cmd] of shapes) {
    const { stdout } = await onCore0('redis-benchmark', ['-h', u.hostname, '-p', u.port, '-c', '50', '-n', String(requests), '-r', '100000', '--csv', ...cmd])
    // --csv: a header line, then "name","rps",...
    const line = stdout.trim().split('\n').at(-1) ?? ''
    const opsPerS = Number(line.split(',')[1]?.replaceAll('"', ''))
    if (!Number.isFinite(opsPerS)) throw new Error(`redis-benchmark printed no rate:\n${stdout}`)
    out.push({ shape, opsPerS })
  }
  return out
}
