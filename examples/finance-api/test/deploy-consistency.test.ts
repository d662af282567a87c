/**
 * The deploy files against the app itself: every variable they set is one
 * the app reads (CONFIG_VARIABLES), their values load with the app's own
 * loadConfig, every port is the one the app listens on, and every probe
 * path answers as a probe should on a running app (not a string compare).
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_DRAIN_TIMEOUT_MS } from '@headroom/health'
import { isolatedRedis, isolatedSchema } from '@headroom/testing'
import t from 'tap'
import { parse } from 'yaml'
import { CONFIG_VARIABLES, loadConfig, type Config } from '../src/config.js'
import { createApp } from '../src/server.js'
import {
  composeAppServices, composeDurationMs, composeEnv, DEPLOY_DIR, find, K8S_DIR, loadCompose, loadKustomization,
  readDockerfile, yamlDocuments, type Obj
} from './deploy-files.js'

const READ = new Set(CONFIG_VARIABLES.map((v: string | { name: string }) => typeof v === 'string' ? v : v.name))
const unknownVariables = (names: Iterable<string>) => [...names].filter((n) => !READ.has(n))

const main = loadKustomization(K8S_DIR)
const migrateJob = find(loadKustomization(`${K8S_DIR}migrate/`).objects, 'Job')
const deployment = find(main.objects, 'Deployment')
const container = deployment.spec.template.spec.containers[0] as Obj
const configMap = find(main.objects, 'ConfigMap', container.envFrom[0].configMapRef.name)
const secretExample = yamlDocuments(await readFile(`${K8S_DIR}secret.example.yaml`, 'utf8'), 'secret.example.yaml')[0]!
const compose = loadCompose()
const apps = composeAppServices(compose)
const image = readDockerfile()

/** The environment a Kubernetes container sees: its ConfigMaps (envFrom) and its env. */
function k8sEnv (c: Obj): Record<string, string> {
  const fromMaps = (c.envFrom ?? []).map((ref: Obj) => find(main.objects, 'ConfigMap', ref.configMapRef.name).data)
  return Object.assign({}, ...fromMaps, Object.fromEntries((c.env ?? []).map((e: Obj) => [e.name, String(e.value)])))
}

t.test('every variable a deploy file sets is one the app reads', async (t) => {
  t.ok(READ.size > 20, 'CONFIG_VARIABLES lists the app\'s variables')
  t.same(unknownVariables(['DATABASE_URLS', 'SESSION_SECRET']), ['DATABASE_URLS'], 'a misspelt variable is caught: the check can fail')
  t.same(unknownVariables(Object.keys(k8sEnv(container))), [], 'k8s Deployment (ConfigMap + env)')
  t.same(unknownVariables(Object.keys(configMap.data)), [], 'k8s ConfigMap')
  t.same(unknownVariables(Object.keys(k8sEnv(migrateJob.spec.template.spec.containers[0]))), [], 'k8s migration Job')
  t.ok(apps.length >= 4, 'compose: three apps and the migration')
  for (const [name, service] of apps) t.same(unknownVariables(Object.keys(composeEnv(service))), [], `compose ${name}`)
  t.same(unknownVariables(Object.keys(image.env)), [], 'Dockerfile ENV')
})

/** Writes each `*_FILE` target into `dir` (mapped by `place`) and returns the env pointing at the copies. */
async function materialise (env: Record<string, string>, place: (path: string) => { file: string, value: string | undefined }): Promise<Record<string, string>> {
  const out = { ...env }
  for (const [k, v] of Object.entries(env)) {
    if (!k.endsWith('_FILE')) continue
    const { file, value } = place(v)
    if (value === undefined) throw new Error(`${k}=${v}: nothing provides this file`)
    await writeFile(file, value)
    out[k] = file
  }
  return out
}

t.test('the manifests\' values load with the app\'s own loadConfig, on the port the manifests expose', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'finance-consistency-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  // Kubernetes: the Secret mounted as files, shaped like secret.example.yaml
  const mount = (container.volumeMounts as Obj[]).find((m) => (deployment.spec.template.spec.volumes as Obj[]).some((v) => v.name === m.name && v.secret))!
  const k8s = await materialise(k8sEnv(container), (path) => {
    t.ok(path.startsWith(`${mount.mountPath}/`), `${path} is in the mounted Secret`)
    const key = path.slice(mount.mountPath.length + 1)
    // the example's session_secret is a placeholder, refused in production by the
    // configuration check as by @headroom/session (test/secrets.test.ts): a generated one stands in
    const value = key === 'session_secret' ? randomBytes(32).toString('base64url') : secretExample.stringData[key]
    return { file: join(dir, `k8s-${key}`), value }
  })
  t.throws(() => loadConfig({ ...k8s, SESSION_SECRET_FILE: '', SESSION_SECRET: secretExample.stringData.session_secret }), /SESSION_SECRET: a secret is a documentation placeholder/,
    'k8s: the example Secret\'s placeholder session_secret is refused at start')
  let config: Config | undefined
  t.doesNotThrow(() => { config = loadConfig(k8s) }, 'k8s: loadConfig accepts the ConfigMap, env and Secret')
  const containerPort = (container.ports as Obj[]).find((p) => p.name === 'http')!.containerPort
  t.equal(config?.port, containerPort, 'k8s: the app listens on the container port')
  t.equal(config?.host, '0.0.0.0', 'k8s: reachable from outside the pod')
  t.equal(config?.env, 'production')
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    t.equal(container[probe].httpGet.port, 'http', `${probe} uses the named container port`)
  }

  // compose: the secrets generate.sh writes, mounted at /run/secrets/<name>
  const secrets = join(dir, 'secrets')
  await mkdir(secrets)
  await cp(join(DEPLOY_DIR, 'secrets/generate.sh'), join(secrets, 'generate.sh'))
  await new Promise<void>((resolve, reject) => execFile('sh', [join(secrets, 'generate.sh')], (err) => err ? reject(err) : resolve()))
  for (const [name, service] of apps) {
    const env = composeEnv(service)
    for (const [k, v] of Object.entries(env)) {
      if (!k.endsWith('_FILE')) continue
      const m = /^\/run\/secrets\/([\w-]+)$/.exec(v)
      t.ok(m && existsSync(join(secrets, m[1]!)), `compose ${name}: ${k}=${v} is a secret generate.sh writes`)
      env[k] = join(secrets, m?.[1] ?? 'missing')
    }
    if (name === 'migrate') {
      t.ok(env.DATABASE_URL_FILE, 'compose migrate: reads the primary\'s URL')
      continue
    }
    let c: Config | undefined
    t.doesNotThrow(() => { c = loadConfig(env) }, `compose ${name}: loadConfig accepts its environment`)
    t.ok(c && (service.expose as string[]).includes(String(c.port)), `compose ${name}: exposes the port it listens on (${c?.port})`)
    t.equal(c?.host, '0.0.0.0')
  }

  // the Dockerfile: the toolchain the repository declares, a user that is not root
  const root = JSON.parse(await readFile(join(DEPLOY_DIR, '../../../package.json'), 'utf8')) as { packageManager: string, engines: { node: string } }
  t.equal(`pnpm@${image.args.PNPM_VERSION}`, root.packageManager, 'the image builds with the pnpm of packageManager')
  const engine = /^>=(\d+)\.(\d+)$/.exec(root.engines.node)
  const [major, minor] = (image.args.NODE_VERSION ?? '').split('.').map(Number)
  t.ok(engine && major === Number(engine[1]) && minor! >= Number(engine[2]), `node ${image.args.NODE_VERSION} satisfies engines ${root.engines.node}`)
  t.same(image.bases, [`node:${image.args.NODE_VERSION}-bookworm-slim`, `node:${image.args.NODE_VERSION}-bookworm-slim`], 'both stages on the same Node')
  t.ok(image.user && !/^(root|0)(:|$)/.test(image.user), `the process runs as ${image.user}, not root`)
  // the Dockerfile: EXPOSE is the port its ENV makes the app listen on
  t.same(image.expose, [loadConfig({ ...image.env, NODE_ENV: 'development' }).port], 'Dockerfile EXPOSE = ENV PORT')
  t.equal(image.stopSignal, 'SIGTERM')
})

t.test('every address of an app instance in compose names an app service and its port', async (t) => {
  const port = String(loadConfig({ PORT: composeEnv(apps[0]![1]).PORT }).port)
  const appNames = apps.map(([n]) => n).filter((n) => n !== 'migrate')
  const nginxEnv = composeEnv(compose.services.nginx)
  const upstreams = Object.entries(nginxEnv).filter(([k]) => /^FINANCE_API_\d+$/.test(k)).map(([, v]) => v)
  t.same(upstreams.sort(), appNames.map((n) => `${n}:${port}`).sort(), 'nginx gets every app instance, on the app\'s port')
  // the templates on nginx/ (the topology branch's) use only variables compose sets for nginx, and every instance
  const templates = readdirSync(join(DEPLOY_DIR, 'nginx')).filter((f) => f.endsWith('.template'))
  t.ok(templates.includes('nginx.conf.template'), 'nginx/nginx.conf.template exists')
  const used = new Set<string>()
  for (const f of templates) {
    for (const m of (await readFile(join(DEPLOY_DIR, 'nginx', f), 'utf8')).matchAll(/\$\{(\w+)\}/g)) used.add(m[1]!)
  }
  t.same([...used].filter((v) => !(v in nginxEnv)), [], 'every variable the templates substitute is set on the nginx service')
  t.same(Object.keys(nginxEnv).filter((v) => v !== 'NGINX_ENVSUBST_OUTPUT_DIR' && !used.has(v)), [], 'and nothing set there is ignored by them')
  t.equal(nginxEnv.NGINX_ENVSUBST_OUTPUT_DIR, '/etc/nginx', 'nginx.conf.template renders to /etc/nginx/nginx.conf')
  const published = (compose.services.nginx.ports as string[]).map((p) => p.split(':').pop())
  t.same(published.sort(), [nginxEnv.FINANCE_API_NGINX_HTTP_LISTEN, nginxEnv.FINANCE_API_NGINX_LISTEN].sort(), 'nginx publishes the ports it listens on')
  // the certificate the template names (relative to /etc/nginx) is mounted there, and generate.sh writes it
  const conf = await readFile(join(DEPLOY_DIR, 'nginx/nginx.conf.template'), 'utf8')
  const certs = [...conf.matchAll(/^\s*ssl_certificate(?:_key)? (\S+);/gm)].map((m) => m[1]!)
  t.same(certs, ['tls/tls.crt', 'tls/tls.key'])
  t.ok((compose.services.nginx.volumes as string[]).includes('./secrets/tls:/etc/nginx/tls:ro'), 'mounted at /etc/nginx/tls')
  const generate = await readFile(join(DEPLOY_DIR, 'secrets/generate.sh'), 'utf8')
  for (const c of certs) t.match(generate, new RegExp(`-(keyout|out) ${c.replace('.', '\\.')}`), `generate.sh writes ${c}`)
  const prometheus = parse(await readFile(join(DEPLOY_DIR, 'prometheus/prometheus.yml'), 'utf8')) as Obj
  const job = (prometheus.scrape_configs as Obj[]).find((j) => j.job_name === 'finance-api')!
  t.same(job.static_configs.flatMap((s: Obj) => s.targets).sort(), appNames.map((n) => `${n}:${port}`).sort(), 'Prometheus scrapes every instance')
})

t.test('the drain fits in the grace periods', async (t) => {
  const drainDelayMs = Number(configMap.data.DRAIN_DELAY_MS)
  const pod = deployment.spec.template.spec
  const preStop = container.lifecycle?.preStop?.exec?.command as string[] | undefined
  const preStopMs = preStop && preStop[0] === '/bin/sleep' ? Number(preStop[1]) * 1000 : 0
  const worst = preStopMs + drainDelayMs + DEFAULT_DRAIN_TIMEOUT_MS
  t.ok(pod.terminationGracePeriodSeconds * 1000 > worst,
    `k8s: terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds} s) > preStop ${preStopMs} + DRAIN_DELAY_MS ${drainDelayMs} + drain timeout ${DEFAULT_DRAIN_TIMEOUT_MS} ms`)
  const readiness = container.readinessProbe
  t.ok(preStopMs + drainDelayMs >= readiness.periodSeconds * readiness.failureThreshold * 1000,
    'k8s: the instance serves until a readiness-following balancer has seen it fail')
  for (const [name, service] of apps) {
    if (name === 'migrate') continue
    const delay = Number(composeEnv(service).DRAIN_DELAY_MS)
    t.ok(composeDurationMs(service.stop_grace_period) > delay + DEFAULT_DRAIN_TIMEOUT_MS,
      `compose ${name}: stop_grace_period ${service.stop_grace_period} > DRAIN_DELAY_MS ${delay} + drain timeout ${DEFAULT_DRAIN_TIMEOUT_MS} ms`)
    t.equal(service.stop_signal, 'SIGTERM')
  }
})

t.test('every probe path in the deploy files is served by the running app as that probe', async (t) => {
  const { url } = await isolatedSchema(t)
  const redis = await isolatedRedis(t)
  const app = await createApp(loadConfig({ DATABASE_URL: url, MIGRATE_ON_START: 'true', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, LOG_LEVEL: 'silent', DRAIN_DELAY_MS: '200' }))
  t.teardown(() => app.close())
  await app.ready()
  await app.health.runChecks()

  const healthcheck = /'http:\/\/127\.0\.0\.1:'\+\(process\.env\.PORT\|\|\d+\)\+'(\/[^']*)'/.exec(image.healthcheck ?? '')
  t.ok(healthcheck, 'the Dockerfile HEALTHCHECK fetches a path on the app\'s PORT')
  const prometheus = parse(await readFile(join(DEPLOY_DIR, 'prometheus/prometheus.yml'), 'utf8')) as Obj
  const metricsPath = (prometheus.scrape_configs as Obj[]).find((j) => j.job_name === 'finance-api')!.metrics_path as string
  const liveness = [container.livenessProbe.httpGet.path, container.startupProbe.httpGet.path, healthcheck?.[1]]
  const readiness = [container.readinessProbe.httpGet.path]

  const get = async (path: string) => (await app.inject({ url: path })).statusCode
  t.equal(await get('/healthz'), 404, 'a path the app does not serve is a 404: the check can fail')
  for (const path of [...liveness, ...readiness]) t.equal(await get(path), 200, `${path} answers 200 when healthy`)
  const metrics = await app.inject({ url: metricsPath })
  t.equal(metrics.statusCode, 200, `Prometheus' ${metricsPath} is served`)
  t.match(metrics.body, /^# HELP /m)

  // as probes: readiness fails as soon as a drain starts, liveness does not
  const drained = app.health.drain()
  for (const path of readiness) t.equal(await get(path), 503, `${path} is 503 while draining (a readiness probe)`)
  for (const path of liveness) t.equal(await get(path), 200, `${path} stays 200 while draining (a liveness probe)`)
  await drained
})
