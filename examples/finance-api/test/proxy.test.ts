import { request } from 'node:http'
import type { TestContext } from '@headroom/testing'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { standalone } from './backends.js'
import { app } from './e2e-suite.js'

/**
 * Over a real socket, because the peer address is the point: the load
 * balancer is 127.0.0.2 (Linux routes all of 127/8 to loopback, so a client
 * can bind it), an untrusted client is 127.0.0.1; for IPv6, ::1.
 */
interface Peer { from: string, headers?: Record<string, string> }

function send (server: FastifyInstance, method: string, path: string, peer: Peer, body?: unknown): Promise<{ status: number, headers: Record<string, string | string[] | undefined> }> {
  const address = server.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  const headers = body === undefined ? peer.headers : { ...peer.headers, 'content-type': 'application/json' }
  return new Promise((resolve, reject) => {
    const req = request({ method, host: address.address, port: address.port, path, localAddress: peer.from, headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

const get = (server: FastifyInstance, path: string, peer: Peer) => send(server, 'GET', path, peer)

const LIMIT = 5

async function listening (t: TestContext, trustProxy: string, host: string, env: Record<string, string> = {}, extra: Parameters<typeof app>[3] = {}) {
  const server = await app(t, standalone, { TRUST_PROXY: trustProxy, RATE_LIMIT_MAX: String(LIMIT), ...env }, extra)
  await server.listen({ host, port: 0 })
  return server
}

/** LIMIT + 2 anonymous API requests from `from`, each claiming a different client in X-Forwarded-For */
async function rotatingForwardedFor (server: FastifyInstance, from: string): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < LIMIT + 2; i++) {
    statuses.push((await get(server, '/api/auth/me', { from, headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } })).status)
  }
  return statuses
}

t.test('TRUST_PROXY naming the load balancer: a forged X-Forwarded-For from another peer is ignored, the balancer\'s is honoured', async (t) => {
  const server = await listening(t, '127.0.0.2', '127.0.0.1')
  const forged = await rotatingForwardedFor(server, '127.0.0.1')
  t.same(forged, [...Array(LIMIT).fill(401), 429, 429], 'a new X-Forwarded-For on every request buys nothing: the real peer is counted')

  const viaBalancer = await rotatingForwardedFor(server, '127.0.0.2')
  t.same(viaBalancer, Array(LIMIT + 2).fill(401), 'through the balancer, each forwarded client has its own budget')
  const oneClient: number[] = []
  for (let i = 0; i < LIMIT + 1; i++) oneClient.push((await get(server, '/api/auth/me', { from: '127.0.0.2', headers: { 'x-forwarded-for': '203.0.113.7' } })).status)
  t.same(oneClient, [...Array(LIMIT).fill(401), 429], 'and one forwarded client is limited as itself')
})

t.test('TRUST_PROXY with IPv6: ::1 trusted is honoured; a list without it ignores the header from ::1', async (t) => {
  const trusted = await listening(t, '::1', '::1')
  t.same(await rotatingForwardedFor(trusted, '::1'), Array(LIMIT + 2).fill(401), 'the trusted ::1 forwards each client')
  const untrusted = await listening(t, '10.0.0.0/8,fd00::/8', '::1')
  t.same(await rotatingForwardedFor(untrusted, '::1'), [...Array(LIMIT).fill(401), 429, 429], '::1 not in the list: its header is ignored')
})

t.test('TRUST_PROXY=true believes every peer: why the README says to name the balancer instead', async (t) => {
  const server = await listening(t, 'true', '127.0.0.1')
  t.same(await rotatingForwardedFor(server, '127.0.0.1'), Array(LIMIT + 2).fill(401), 'any directly connected client escapes the per-address limit')
})

t.test('production behind a balancer that forgets X-Forwarded-Proto: no Secure cookie, and one warning naming the fix', async (t) => {
  const lines: string[] = []
  const server = await listening(t, '127.0.0.2', '127.0.0.1', { NODE_ENV: 'production', SESSION_SECRET: 'Vq3x9LkP0aZm7RtY2wBn5CdE8fGh1JsU4oQi6', LOG_LEVEL: 'warn' }, {
    logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } }
  })
  const warnings = () => lines.filter((l) => l.includes('a Secure session cookie was not sent'))
  const signup = { email: 'proto@example.com', password: 'long enough password', name: 'P' }
  const forgot = await send(server, 'POST', '/api/auth/signup', { from: '127.0.0.2' }, signup)
  t.equal(forgot.status, 201)
  t.equal(forgot.headers['set-cookie'], undefined, 'no cookie over what looks like http')
  t.equal(warnings().length, 1, 'said once')
  t.match(warnings()[0], /X-Forwarded-Proto: https/)

  const forged = await send(server, 'POST', '/api/auth/login', { from: '127.0.0.1', headers: { 'x-forwarded-proto': 'https' } }, signup)
  t.equal(forged.headers['set-cookie'], undefined, 'a direct client claiming https is not believed')
  const fixed = await send(server, 'POST', '/api/auth/login', { from: '127.0.0.2', headers: { 'x-forwarded-proto': 'https' } }, signup)
  t.match(String(fixed.headers['set-cookie']), /Secure/, 'the balancer saying https gets the Secure cookie')
  t.equal(warnings().length, 1, 'still one warning for the instance')
})
