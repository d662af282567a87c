import { createHash } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'

export const PUBLIC_DIR = new URL('../public/', import.meta.url)
/** A year: assets are addressed by content hash, so a cached copy is never wrong. */
export const ASSET_MAX_AGE_S = 31_536_000

/**
 * The dashboard: /assets/* with year-long `immutable` caching (fit for a
 * CDN: the URLs carry a content hash, `?v=`), and / whose HTML links those
 * hashed URLs and is revalidated on each visit (`no-cache` + ETag), so a
 * deploy is picked up at once while assets are never fetched twice.
 */
export const staticRoutes: FastifyPluginAsync = async (app) => {
  const assets = new URL('assets/', PUBLIC_DIR)
  const versions = new Map<string, string>()
  for (const file of await readdir(assets)) {
    versions.set(file, createHash('sha256').update(await readFile(new URL(file, assets))).digest('hex').slice(0, 12))
  }
  const template = await readFile(new URL('index.html', PUBLIC_DIR), 'utf8')
  const html = template.replace(/\/assets\/([\w.-]+)/g, (m, file: string) => versions.has(file) ? `${m}?v=${versions.get(file)}` : m)
  const etag = `"${createHash('sha256').update(html).digest('hex').slice(0, 16)}"`

  await app.register(fastifyStatic, {
    root: assets,
    prefix: '/assets/',
    cacheControl: false,
    etag: true,
    lastModified: false,
    setHeaders (res) {
      res.setHeader('cache-control', `public, max-age=${ASSET_MAX_AGE_S}, immutable`)
    }
  })

  // the page is static too: a browser reload must never cost the user API quota
  app.get('/', { config: { rateLimit: false } }, async (request, reply) => {
    reply.header('cache-control', 'public, no-cache').header('etag', etag).type('text/html; charset=utf-8')
    if (request.headers['if-none-match'] === etag) return reply.code(304).send()
    return html
  })
}
