import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { composeAppServices, composeEnv, DEPLOY_DIR, loadCompose } from './deploy-files.js'

interface Result { code: number, stdout: string, stderr: string }

/** Runs a tool to completion; a missing tool is a failure (ENOENT), never a skip. */
function run (file: string, args: string[], cwd: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: 60_000, env: { ...process.env, COMPOSE_INTERACTIVE_NO_CLI: '1' } }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${file} could not run (${err.code ?? err.message}): install it (.ci/needs lists the Debian package)`))
        return
      }
      resolve({ code: err ? err.code as unknown as number : 0, stdout, stderr })
    })
  })
}

async function scratch (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'finance-deploy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('docker-compose config accepts compose.yaml', async (t) => {
  const ok = await run('docker-compose', ['-f', 'compose.yaml', 'config', '-q'], DEPLOY_DIR)
  t.equal(ok.code, 0, ok.stderr)
  // and the resolved file has what the topology needs
  const resolved = await run('docker-compose', ['-f', 'compose.yaml', 'config', '--services'], DEPLOY_DIR)
  t.equal(resolved.code, 0, resolved.stderr)
  const services = resolved.stdout.trim().split('\n').sort()
  for (const s of ['nginx', 'app-1', 'app-2', 'app-3', 'migrate', 'postgres-primary', 'postgres-replica-1', 'postgres-replica-2', 'redis-cache', 'redis-cluster-init', 'prometheus']) {
    t.ok(services.includes(s), `service ${s}`)
  }
  t.equal(services.filter((s) => /^redis-node-\d$/.test(s)).length, 6, 'a Redis Cluster of six nodes (3 masters + 3 replicas)')
})

t.test('the tests read compose.yaml as docker-compose does (anchors, merge keys, scalars)', async (t) => {
  const resolved = await run('docker-compose', ['-f', 'compose.yaml', 'config'], DEPLOY_DIR)
  t.equal(resolved.code, 0, resolved.stderr)
  const theirs = parse(resolved.stdout) as { services: Record<string, Record<string, unknown>> }
  const ours = loadCompose()
  for (const name of Object.keys(ours.services)) {
    const service = ours.services[name]
    t.same(composeEnv(theirs.services[name]!), composeEnv(service), `${name}: environment`)
    for (const key of ['image', 'stop_grace_period', 'stop_signal', 'read_only', 'expose', 'user', 'entrypoint', 'command', 'hostname'] as const) {
      if (service[key] !== undefined) t.same(theirs.services[name]![key], service[key], `${name}: ${key}`)
    }
  }
})

t.test('docker-compose config rejects a broken file: the check can fail', async (t) => {
  const dir = await scratch(t)
  const text = await readFile(join(DEPLOY_DIR, 'compose.yaml'), 'utf8')
  t.match(text, /stop_grace_period: 20s/)
  await writeFile(join(dir, 'compose.yaml'), text.replace('stop_grace_period: 20s', 'stop_grace_period: [20]'))
  const bad = await run('docker-compose', ['-f', 'compose.yaml', 'config', '-q'], dir)
  t.not(bad.code, 0)
  t.match(bad.stderr, /stop_grace_period contains an invalid type/)
  await writeFile(join(dir, 'compose.yaml'), text.replace('read_only: true', 'read_only: "yes please"'))
  t.not((await run('docker-compose', ['-f', 'compose.yaml', 'config', '-q'], dir)).code, 0)
  await writeFile(join(dir, 'compose.yaml'), text.replace('stop_grace_period: 20s', 'stop_grace_periood: 20s'))
  const typo = await run('docker-compose', ['-f', 'compose.yaml', 'config', '-q'], dir)
  t.not(typo.code, 0)
  t.match(typo.stderr, /Unsupported config option for services\.app-1: 'stop_grace_periood'/, 'a misspelt key too')
})

t.test('every secret a service names is declared with a file under secrets/, which generate.sh writes', async (t) => {
  const compose = loadCompose()
  const declared = compose.secrets as Record<string, { file: string }>
  const generate = await readFile(join(DEPLOY_DIR, 'secrets/generate.sh'), 'utf8')
  for (const [name, service] of Object.entries(compose.services as Record<string, { secrets?: string[] }>)) {
    for (const s of service.secrets ?? []) t.ok(declared[s], `${name}: secret ${s} is declared`)
  }
  for (const [name, { file }] of Object.entries(declared)) {
    t.equal(file, `./secrets/${name}`)
    t.match(generate, new RegExp(`write ${name} `), `generate.sh writes ${name}`)
  }
  // the app services read their secrets from /run/secrets/<name>, and only names they mount
  for (const [name, service] of composeAppServices(compose)) {
    for (const [key, value] of Object.entries(service.environment as Record<string, string>)) {
      if (!key.endsWith('_FILE')) continue
      const m = /^\/run\/secrets\/(.+)$/.exec(value)
      t.ok(m && (service.secrets as string[]).includes(m[1]!), `${name}: ${key}=${value} is a mounted secret`)
    }
  }
})

t.test('promtool accepts prometheus/prometheus.yml and rejects a broken one', async (t) => {
  const ok = await run('promtool', ['check', 'config', '--syntax-only', 'prometheus/prometheus.yml'], DEPLOY_DIR)
  t.equal(ok.code, 0, ok.stdout + ok.stderr)
  const dir = await scratch(t)
  const text = await readFile(join(DEPLOY_DIR, 'prometheus/prometheus.yml'), 'utf8')
  await writeFile(join(dir, 'prometheus.yml'), text.replace('scrape_interval: 15s', 'scrape_interval: fifteen'))
  t.not((await run('promtool', ['check', 'config', '--syntax-only', 'prometheus.yml'], dir)).code, 0)
})

t.test('the shell scripts the containers run parse', async (t) => {
  for (const [shell, file] of [['bash', 'postgres/primary-init.sh'], ['bash', 'postgres/replica-entrypoint.sh'], ['sh', 'redis/cluster-init.sh'], ['sh', 'secrets/generate.sh']] as const) {
    const r = await run(shell, ['-n', file], DEPLOY_DIR)
    t.equal(r.code, 0, `${file}: ${r.stderr}`)
  }
})
