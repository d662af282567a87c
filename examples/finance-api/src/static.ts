import { createHash } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'

export const PUBLIC_DIR = new URL('../public/', import.meta.url)
/** A year: assets are addressed by content hash, so a cached copy is never wrong. */
export const ASSET_MAX_AGE_S = 31_536_000

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.html': 'text/html; charset=utf-8'
}

const hash = (data: string | Buffer, length: number): string => createHash('sha256').update(data).digest('hex').slice(0, length)

/** a response fixed at start */
interface Fixed { body: Buffer | string, type: string, cacheControl: string, etag: string }

/** its headers, then a 304 when the client holds its ETag, else the body */
function sendFixed (request: FastifyRequest, reply: FastifyReply, fixed: Fixed): void {
  reply.header('cache-control', fixed.cacheControl).header('etag', fixed.etag)
  if (request.headers['if-none-match'] === fixed.etag) {
    reply.code(304).send()
    return
  }
  reply.header('content-type', fixed.type).send(fixed.body)
}

/**
 * The dashboard: /assets/* with year-long `immutable` caching (fit for a
 * CDN: the URLs carry a content hash, `?v=`), and / whose HTML links those
 * hashed URLs and is revalidated on each visit (`no-cache` + ETag), so a
 * deploy is picked up at once while assets are never fetched twice.
 *
 * Every file is read once at start and served from memory with its headers
 * computed once: the assets are a few kilobytes and change only with a
 * deploy. @fastify/static opened, stat'ed and streamed the file on every
 * request (a file descriptor and several thread-pool round trips each).
 * Only the files present at start exist: nothing under /assets/ reaches the
 * file system, so no path can escape it.
 */
export const staticRoutes: FastifyPluginAsync = async (app) => {
  const assets = new URL('assets/', PUBLIC_DIR)
  const versions = new Map<string, string>()
  for (const file of (await readdir(assets)).sort()) {
    const body = await readFile(new URL(file, assets))
    const version = hash(body, 12)
    versions.set(file, version)
    const type = TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream'
    const asset: Fixed = { body, type, cacheControl: `public, max-age=${ASSET_MAX_AGE_S}, immutable`, etag: `"${version}"` }
    app.get(`/assets/${file}`, { config: { rateLimit: false } }, (request, reply) => { sendFixed(request, reply, asset) })
  }
  const template = await readFile(new URL('index.html', PUBLIC_DIR), 'utf8')
  const html = template.replace(/\/assets\/([\w.-]+)/g, (m, file: string) => versions.has(file) ? `${m}?v=${versions.get(file)}` : m)
  const page: Fixed = { body: html, type: TYPES['.html']!, cacheControl: 'public, no-cache', etag: `"${hash(html, 16)}"` }
  // the page is static too: a browser reload must never cost the user API quota
  app.get('/', { config: { rateLimit: false } }, (request, reply) => { sendFixed(request, reply, page) })
}
