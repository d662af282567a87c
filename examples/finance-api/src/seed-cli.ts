/**
 * pnpm seed --users N   (DATABASE_URL or DATABASE_URL_FILE: the database to fill; migrations are applied first)
 */
import { parseArgs } from 'node:util'
import { envReader } from './env.js'
import { migrate } from './migrate.js'
import { SEED_PASSWORD, seed, seedEmail } from './seed.js'

function fail (message: string): never {
  console.error(message)
  process.exit(1)
}

const { values } = parseArgs({ options: { users: { type: 'string', default: '1000' }, help: { type: 'boolean' } } })
if (values.help) {
  console.log('pnpm seed --users N\n  fills DATABASE_URL with N users, their accounts and ~10 transactions each (COPY)')
  process.exit(0)
}
const users = Number(values.users)
if (!Number.isInteger(users) || users < 1 || users > 10_000_000) fail(`--users must be an integer from 1 to 10000000 (got "${values.users}")`)
// the server's reader, so DATABASE_URL_FILE works here too
const problems: string[] = []
const url = envReader(process.env, problems)('DATABASE_URL')
if (problems.length > 0) fail(problems.join('\n'))
if (!url) {
  fail('DATABASE_URL is not set: the seed fills a real PostgreSQL (the embedded database lives inside the server process).\n' +
    'e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/finance pnpm seed --users 1000')
}

const width = 30
const started = Date.now()
const tty = process.stderr.isTTY
let lastPrinted = -1
function progress (done: number, total: number, phase: 'copy' | 'commit') {
  if (phase === 'commit') {
    process.stderr.write(`${tty ? '\n' : ''}committing and analysing…\n`)
    return
  }
  const pct = Math.floor((done / total) * 100)
  if (!tty && pct < lastPrinted + 10 && done !== total) return
  lastPrinted = pct
  const filled = Math.round((done / total) * width)
  const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}%  ${((Date.now() - started) / 1000).toFixed(1)}s`
  process.stderr.write(tty ? `\r${line}` : `${line}\n`)
}

await migrate(url)
const result = await seed(url, { users, onProgress: progress })
console.log(`seeded ${result.users.toLocaleString('en-US')} users, ${result.accounts.toLocaleString('en-US')} accounts, ` +
  `${result.transactions.toLocaleString('en-US')} transactions in ${(result.ms / 1000).toFixed(1)}s`)
console.log(`log in as ${seedEmail(result.firstUserId)} … ${seedEmail(result.firstUserId + result.users - 1)} with password ${SEED_PASSWORD}`)
