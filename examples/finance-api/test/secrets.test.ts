import t from 'tap'
import { normalizeOptions } from '@headroom/session'
import { ConfigError, DEV_SESSION_SECRET, loadConfig } from '../src/config.js'

const RANDOM = 'k3J9xQ2mZp7VtR4wLs8NcY6bHf1DgE0u' // 32 characters, 32 distinct
const OTHER = 'Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcV'

/** What the configuration check says about SESSION_SECRET, and whether @headroom/session then starts. */
function verdicts (secret: string, production: boolean) {
  const env = { SESSION_SECRET: secret, ...(production && { NODE_ENV: 'production', DATABASE_URL: 'postgres://db/x' }) }
  let config
  try {
    config = loadConfig(env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return { config: false, problems: err.problems }
  }
  let session = true
  try {
    normalizeOptions({ secret: config.sessionSecrets, production })
  } catch {
    session = false
  }
  return { config: true, session, secrets: config.sessionSecrets }
}

// [secret, accepted in production?, accepted in development?]
const CASES: Array<[string, string, boolean, boolean]> = [
  ['31 characters', RANDOM.slice(0, 31), false, false],
  ['exactly 32 characters', RANDOM, true, true],
  ['32 characters padded with whitespace (trimmed)', `  ${RANDOM}\t`, true, true],
  ['two rotated secrets', `${RANDOM},${OTHER}`, true, true],
  ['two rotated secrets around spaces', ` ${RANDOM} , ${OTHER} `, true, true],
  ['a good secret then a short one', `${RANDOM},${OTHER.slice(0, 20)}`, false, false],
  ['a trailing comma', `${RANDOM},`, true, true],
  ['only commas and spaces', ' , ,', false, false],
  ['40 times the same character', 'a'.repeat(40), false, true],
  ['a documentation placeholder, long enough', 'a secret with minimum length of 32 characters', false, true],
  ['a rotated placeholder', `${RANDOM},changeme-changeme-changeme-changeme`, false, true],
  ['32 characters, 7 distinct', 'abcdefg'.repeat(5).slice(0, 32), false, true],
  ['32 characters, 8 distinct', 'abcdefgh'.repeat(4), true, true],
  ['inner whitespace kept', `${RANDOM.slice(0, 16)} ${RANDOM.slice(16)}`, true, true],
  ['the development default', DEV_SESSION_SECRET, false, true]
]

t.test('SESSION_SECRET: the configuration check and @headroom/session agree on every boundary', async (t) => {
  for (const [what, secret, production, development] of CASES) {
    for (const [env, expected] of [['production', production], ['development', development]] as const) {
      const v = verdicts(secret, env === 'production')
      t.equal(v.config, expected, `${env}, ${what}: ${expected ? 'accepted' : 'refused'} by the configuration check${v.config ? '' : ` (${String(v.problems)})`}`)
      if (v.config) t.equal(v.session, true, `${env}, ${what}: accepted by the check, so @headroom/session starts with it`)
      if (!v.config) t.ok(v.problems?.some((p) => p.startsWith('SESSION_SECRET')), `${env}, ${what}: the problem names SESSION_SECRET`)
    }
  }
})

t.test('what the check accepts reaches the plugin trimmed, newest first', async (t) => {
  t.same(loadConfig({ SESSION_SECRET: ` ${RANDOM} , ${OTHER} ` }).sessionSecrets, [RANDOM, OTHER])
  const [problem] = (() => { try { loadConfig({ SESSION_SECRET: `${RANDOM},${OTHER.slice(0, 20)}` }); return [] } catch (err) { return (err as ConfigError).problems } })()
  t.match(problem, /secret 2 of 2/, 'the problem says which of the rotated secrets')
})
