import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { fileVariable, SECRET_VARIABLES } from './variables.js'

export type Env = Record<string, string | undefined>

/**
 * Reads one variable, trimmed, empty meaning unset. A secret may come from
 * `<NAME>_FILE` instead (a mounted secret); setting both is refused rather
 * than silently preferring one, since a stale value in either would be hard
 * to spot. Problems are pushed to `problems`, never thrown, so every one is
 * reported at once.
 */
export function envReader (env: Env, problems: string[]): (name: string) => string | undefined {
  const plain = (name: string): string | undefined => {
    const v = env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  return (name) => {
    const value = plain(name)
    if (!(SECRET_VARIABLES as readonly string[]).includes(name)) return value
    const fileName = fileVariable(name)
    const path = plain(fileName)
    if (path === undefined) return value
    if (value !== undefined) {
      problems.push(`${name} and ${fileName} are both set: set only one of them`)
      return value
    }
    let content: string
    try {
      content = readFileSync(path, 'utf8').trim()
    } catch (err) {
      // the path is not a secret; the error code says why (ENOENT, EACCES, EISDIR)
      problems.push(`${fileName}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}), so ${name} has no value`)
      return undefined
    }
    if (content === '') problems.push(`${fileName}: ${path} is empty, so ${name} has no value`)
    return content === '' ? undefined : content
  }
}

/** What Fastify's `trustProxy` takes: a boolean, or the addresses and CIDRs of the trusted proxies. */
export type TrustProxy = boolean | string[]

/** proxy-addr's names for address ranges, which Fastify accepts in the list too. */
const RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal']

/**
 * TRUST_PROXY: `false`, `true` (every peer is a proxy: only safe when no one
 * can reach the instance except through the load balancer), or a
 * comma-separated list of addresses and CIDRs (IPv4 and IPv6). A hop count
 * is refused: Fastify 5.12 disabled hop-count trust (it trusts nothing for a
 * number, since the nearest peer is never checked), so accepting one would
 * silently put every client behind the balancer's one address.
 */
export function parseTrustProxy (raw: string): TrustProxy | { problem: string } {
  if (raw === 'true') return true
  if (raw === 'false') return false
  if (/^\d+$/.test(raw)) {
    return { problem: `TRUST_PROXY=${raw}: a hop count is not supported (Fastify 5 ignores hop-count trust: a client that reaches the instance directly could forge X-Forwarded-For); name the load balancers' addresses or CIDRs instead, e.g. TRUST_PROXY=10.0.0.0/8` }
  }
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean)
  const bad = items.filter((item) => !isAddressOrCidr(item))
  if (items.length === 0 || bad.length > 0) {
    return { problem: `TRUST_PROXY must be true, false, or a comma-separated list of IPv4/IPv6 addresses or CIDRs (e.g. 10.0.0.0/8,fd00::/8) or ${RANGE_NAMES.join('/')}; not an address or CIDR: ${(bad.length > 0 ? bad : [raw]).map((b) => `"${b}"`).join(', ')}` }
  }
  return items
}

function isAddressOrCidr (item: string): boolean {
  if (RANGE_NAMES.includes(item)) return true
  const [address = '', prefix, extra] = item.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  if (prefix === undefined) return true
  if (!/^\d+$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}

/** One Redis deployment the app talks to, parsed from a `*REDIS_URL` variable. */
export type RedisTarget =
  | { mode: 'standalone', url: string, display: string }
  | {
    mode: 'cluster'
    /** the startup nodes: any reachable one tells the client the rest of the cluster */
    nodes: Array<{ host: string, port: number }>
    username: string | undefined
    password: string | undefined
    tls: boolean
    display: string
  }

const DEFAULT_REDIS_PORT = 6379
const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?(\d*)$/

/**
 * `redis://[user:password@]host:port[/db]` and `rediss://…` for one server,
 * `redis+cluster://[user:password@]host1:port,host2:port` and
 * `rediss+cluster://…` for a cluster (one URL, so it fits each of
 * REDIS_URL, SESSION_REDIS_URL and CACHE_REDIS_URL and their *_FILE forms).
 * `display` never carries the credentials: it goes to logs (never to a response).
 */
export function parseRedisUrl (name: string, raw: string): RedisTarget | { problem: string } {
  const cluster = raw.startsWith('redis+cluster:') || raw.startsWith('rediss+cluster:')
  if (!cluster) {
    let parsed: URL
    try {
      parsed = new URL(raw)
    } catch {
      return { problem: `${name} is not a URL (expected redis://host:port or redis+cluster://host1:port,host2:port)` }
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      return { problem: `${name} must start with redis://, rediss://, redis+cluster:// or rediss+cluster:// (got ${parsed.protocol}//…)` }
    }
    return { mode: 'standalone', url: raw, display: `${parsed.protocol}//${parsed.host}` }
  }
  const m = CLUSTER_URL.exec(raw)
  if (!m) return { problem: `${name} must look like redis+cluster://[user:password@]host1:port,host2:port (no path or query)` }
  const [, scheme = 'redis', userinfo, hostList = '', db] = m
  if (db !== undefined && db !== '' && db !== '0') return { problem: `${name}: a Redis Cluster has only database 0 (got /${db})` }
  const nodes: Array<{ host: string, port: number }> = []
  for (const item of hostList.split(',').map((s) => s.trim()).filter(Boolean)) {
    // [::1]:7000, host:7000, or a bare host on the default port
    const hm = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(item)
    const port = hm?.[3] === undefined ? DEFAULT_REDIS_PORT : Number(hm[3])
    if (!hm || port < 1 || port > 65535) return { problem: `${name}: "${item}" is not host:port (IPv6 as [::1]:7000)` }
    nodes.push({ host: (hm[1] ?? hm[2]) as string, port })
  }
  if (nodes.length === 0) return { problem: `${name} names no cluster node` }
  const [user, password] = userinfo === undefined ? [] : splitUserinfo(userinfo)
  return {
    mode: 'cluster',
    nodes,
    username: user || undefined,
    password,
    tls: scheme === 'rediss',
    display: `${scheme}+cluster://${nodes.map((n) => n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`).join(',')}`
  }
}

function splitUserinfo (userinfo: string): [string, string | undefined] {
  const colon = userinfo.indexOf(':')
  if (colon === -1) return [decodeURIComponent(userinfo), undefined]
  return [decodeURIComponent(userinfo.slice(0, colon)), decodeURIComponent(userinfo.slice(colon + 1))]
}
