import { timingSafeEqual, createHash } from 'node:crypto'
import { BlockList, isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { InvalidOption, MetricsForbidden, MetricsUnauthorized } from './errors.js'

const PROXY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip']

function addRule (list: BlockList, rule: string): void {
  const [address = '', prefix] = rule.split('/')
  const type = isIP(address) === 6 ? 'ipv6' : isIP(address) === 4 ? 'ipv4' : null
  if (type === null) throw new InvalidOption('metrics.allow', `has "${rule}", which is not an IP address or CIDR range`)
  if (prefix === undefined) {
    list.addAddress(address, type)
    return
  }
  const bits = Number(prefix)
  if (!Number.isInteger(bits) || bits < 0 || bits > (type === 'ipv4' ? 32 : 128)) {
    throw new InvalidOption('metrics.allow', `has "${rule}", whose prefix length is invalid`)
  }
  list.addSubnet(address, bits, type)
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * Who may read /metrics. The peer address is the socket's, never a header
 * (which anyone can send), and a request relayed by a proxy is refused
 * without the token: a public load balancer that sits inside the private
 * network must not turn /metrics public. The token is compared in constant
 * time.
 */
export function metricsAccess (allow: string[], token: string | undefined): (request: FastifyRequest) => void {
  const list = new BlockList()
  for (const rule of allow) addRule(list, rule)
  const expected = token === undefined ? undefined : digest(token)

  return (request) => {
    const authorization = request.headers.authorization
    if (expected !== undefined && authorization !== undefined) {
      const match = /^Bearer\s+(.+)$/i.exec(authorization)
      if (match && timingSafeEqual(digest(match[1] as string), expected)) return
      throw new MetricsUnauthorized()
    }
    const relayed = PROXY_HEADERS.some((h) => request.headers[h] !== undefined)
    let address = request.socket.remoteAddress ?? ''
    if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) address = address.slice(7)
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (!relayed && address !== '' && list.check(address, family)) return
    throw expected !== undefined ? new MetricsUnauthorized() : new MetricsForbidden()
  }
}
