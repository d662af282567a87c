import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { guardExit, isListening, sleep, waitFor, type TestContext } from '@headroom/testing'

/** The repository's nginx configuration: what the image mounts at /etc/nginx/templates. */
export const NGINX_TEMPLATE_DIR = fileURLToPath(new URL('../deploy/nginx/', import.meta.url))
export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx'
const MAIN = 'nginx.conf'
const UPSTREAMS = 'finance-api-upstreams.conf'

/**
 * Runs a command to completion, its stdout to `/dev/null` (a file: nginx
 * opens /dev/stdout for the access log, which fails on the socket Node
 * would give it); rejects with its stderr when it fails.
 */
export function run (file: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const out = openSync('/dev/null', 'w')
    const child = spawn(file, args, { stdio: ['ignore', out, 'pipe'], timeout: timeoutMs })
    closeSync(out)
    let stderr = ''
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
    child.once('error', reject)
    child.once('close', (code, signal) => {
      if (code === 0) resolve(stderr)
      else reject(new Error(`${file} ${args.join(' ')} failed (${code ?? signal}):\n${stderr}`))
    })
  })
}

/**
 * What the official image's envsubst does to `<name>.template`, stricter:
 * `${NAME}` is replaced by `vars.NAME`, and a `${NAME}` left without a
 * value is an error instead of an empty string. nginx's own `$variables`
 * (no braces) are untouched.
 */
export function renderTemplate (text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const value = vars[name]
    if (value === undefined) throw new Error(`nginx template: no value for \${${name}}`)
    return value
  })
}

/**
 * The upstream list for `addresses`: the template's first `server` line,
 * repeated with each address (the template has three; scaling is one line
 * more or less, as an operator would edit it).
 */
export function renderUpstreams (addresses: string[]): string {
  const template = readFileSync(join(NGINX_TEMPLATE_DIR, `${UPSTREAMS}.template`), 'utf8')
  const line = template.split('\n').find((l) => l.startsWith('server '))
  if (line === undefined) throw new Error(`${UPSTREAMS}.template has no server line`)
  const variable = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/.exec(line)![1]!
  return addresses.map((address) => renderTemplate(line, { [variable]: address })).join('\n') + '\n'
}

export interface NginxAddresses {
  /** the TLS listener, e.g. `127.0.0.1:8443` or `443` */
  listen: string
  /** the plain-HTTP listener that only redirects */
  httpListen: string
  upstreams: [string, string, string]
}

/**
 * Renders both templates into `prefix` (nginx's -p: pid, temp, cache and
 * tls/ paths resolve there) exactly as the image would, with a self-signed
 * certificate for 127.0.0.1 in tls/, and returns the main file's path.
 */
export async function renderConfig (prefix: string, addresses: NginxAddresses): Promise<string> {
  const vars = {
    FINANCE_API_NGINX_LISTEN: addresses.listen,
    FINANCE_API_NGINX_HTTP_LISTEN: addresses.httpListen,
    FINANCE_API_1: addresses.upstreams[0],
    FINANCE_API_2: addresses.upstreams[1],
    FINANCE_API_3: addresses.upstreams[2]
  }
  for (const file of [MAIN, UPSTREAMS]) {
    writeFileSync(join(prefix, file), renderTemplate(readFileSync(join(NGINX_TEMPLATE_DIR, `${file}.template`), 'utf8'), vars))
  }
  mkdirSync(join(prefix, 'tls'), { recursive: true })
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(prefix, 'tls', 'tls.key'), '-out', join(prefix, 'tls', 'tls.crt')
  ])
  // nginx's workers (nobody, when run as root) must reach the cache and temp paths
  chmodSync(prefix, 0o755)
  return join(prefix, MAIN)
}

/** `nginx -t` on a rendered configuration; rejects with nginx's own message. */
export async function nginxTest (prefix: string): Promise<string> {
  return run(NGINX_BIN, ['-t', '-q', '-p', prefix + '/', '-c', join(prefix, MAIN), '-e', 'stderr'])
}

export interface Nginx {
  readonly url: string
  /** the self-signed certificate clients must trust */
  readonly certificate: string
  /** the JSON access log, one line per request */
  readonly accessLog: string
  /** replaces the upstream list and reloads (`nginx -s reload`); resolves once the new workers serve (300 ms after the signal) */
  setUpstreams (addresses: string[]): Promise<void>
  stop (): Promise<void>
}

/**
 * nginx in the foreground (`daemon off`, as the image runs it) with the
 * rendered configuration; its access log (stdout) and error log (stderr)
 * go to files in the prefix. Teardown, or process exit, stops it.
 */
export async function startNginx (t: TestContext, prefix: string, port: number, httpPort: number, upstreams: [string, string, string]): Promise<Nginx> {
  const conf = await renderConfig(prefix, { listen: `127.0.0.1:${port}`, httpListen: `127.0.0.1:${httpPort}`, upstreams })
  await nginxTest(prefix)
  const accessLog = join(prefix, 'access.log')
  const out = openSync(accessLog, 'a')
  const err = openSync(join(prefix, 'error.log'), 'a')
  const args = ['-p', prefix + '/', '-c', conf, '-e', 'stderr']
  const child: ChildProcess = spawn(NGINX_BIN, [...args, '-g', 'daemon off;'], { stdio: ['ignore', out, err] })
  closeSync(out)
  closeSync(err)
  let exited = false
  child.once('exit', () => { exited = true })
  const unguard = guardExit(() => { if (!exited) child.kill('SIGKILL') })
  const stop = async () => {
    if (exited) return
    const gone = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGQUIT')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
    unguard()
  }
  t.teardown(stop)
  await waitFor('nginx to listen', async () => {
    if (exited) throw new Error(`nginx exited at start: ${readFileSync(join(prefix, 'error.log'), 'utf8')}`)
    return isListening(port)
  })
  return {
    url: `https://127.0.0.1:${port}`,
    certificate: readFileSync(join(prefix, 'tls', 'tls.crt'), 'utf8'),
    accessLog,
    async setUpstreams (addresses) {
      writeFileSync(join(prefix, UPSTREAMS), renderUpstreams(addresses))
      await nginxTest(prefix)
      // the master re-reads the configuration and starts new workers; the old ones finish their requests
      await run(NGINX_BIN, [...args, '-s', 'reload'])
      await sleep(300)
    },
    stop
  }
}
