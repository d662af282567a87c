// The image's migration command: `node deploy/migrate.mjs` (the k8s Job and
// the compose `migrate` service). Applies migrations/*.sql with the app's own
// migrate() (advisory lock, each file once) and exits; it needs the primary
// only, not the session secret or Redis that the server's configuration
// requires. Run it before a rollout: instances with DATABASE_URL only check
// the schema version at start (MIGRATE_ON_START=true makes them migrate).
// DATABASE_URL or DATABASE_URL_FILE, read by the app's own reader (trimmed,
// both set is an error), so the two commands cannot disagree about it.
import { envReader } from '../dist/env.js'
import { migrate } from '../dist/migrate.js'

const problems = []
const url = envReader(process.env, problems)('DATABASE_URL')
if (url === undefined && problems.length === 0) problems.push('DATABASE_URL (or DATABASE_URL_FILE) must be set: the primary to migrate')
if (problems.length > 0) {
  console.error(JSON.stringify({ level: 50, time: Date.now(), msg: 'cannot migrate', problems }))
  process.exit(1)
}
try {
  const applied = await migrate(url)
  console.log(JSON.stringify({ level: 30, time: Date.now(), msg: 'migrations applied', applied }))
} catch (err) {
  // the message names the migration file; the URL (with its password) is not printed
  console.error(JSON.stringify({ level: 50, time: Date.now(), msg: 'migrations failed', err: err.message }))
  process.exit(1)
}
