import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isAlive, PRIVATE_DIR_PREFIX, startPostgres, startRedis } from '../src/index.js'

t.test('teardown removes private servers and their directories', async (t) => {
  const seen: { dirs: string[], pids: number[] } = { dirs: [], pids: [] }
  await t.test('a test that starts servers', async (t) => {
    const pg = await startPostgres(t)
    const redis = await startRedis(t)
    seen.dirs.push(pg.baseDir, redis.baseDir)
    seen.pids.push(pg.pid()!, redis.pid()!)
    t.ok(seen.dirs.every(existsSync))
  })
  for (const dir of seen.dirs) t.notOk(existsSync(dir), `${dir} removed`)
  for (const pid of seen.pids) t.notOk(isAlive(pid), `process ${pid} gone`)
})

async function leavesNothing (t: Test, fixture: string, crashes: boolean): Promise<void> {
  const script = fileURLToPath(new URL(`./fixtures/${fixture}`, import.meta.url))
  const res = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 60_000 })
  if (crashes) t.not(res.status, 0, 'the script crashed')
  else t.equal(res.status, 0, 'the script exited')
  const report = JSON.parse(res.stdout.trim().split('\n').at(-1)!) as { dirs: string[], pids: number[] }
  t.equal(report.dirs.length, 2)
  for (const dir of report.dirs) t.notOk(existsSync(dir), `${dir} removed`)
  // postgres exits on its own schedule after an immediate stop; give it a moment
  const deadline = Date.now() + 10_000
  while (report.pids.some(isAlive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  for (const pid of report.pids) t.notOk(isAlive(pid), `process ${pid} gone`)
  t.notOk(readdirSync(tmpdir()).some((d) => d.startsWith(PRIVATE_DIR_PREFIX) && report.dirs.includes(join(tmpdir(), d))))
}

t.test('a test process that crashes before teardown still leaves nothing behind', async (t) => {
  // the script starts both kinds of server, prints where they live, then throws
  await leavesNothing(t, 'crash.ts', true)
})

t.test('a process that exits while teardown is under way leaves nothing behind', async (t) => {
  // destroy() used to drop its exit guard before it awaited the stop: the server
  // was killed, its directory stayed (a CI run found one left by a benchmark)
  await leavesNothing(t, 'exit-during-destroy.ts', false)
})
