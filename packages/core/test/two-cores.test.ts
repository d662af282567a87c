import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as core from '../src/index.js'

// Two copies of @headroom/core in one app, as a package manager can install
// them (a plugin pinned to another core): the built dist copied to a
// directory of its own, with another package version and hub contract.

type Core = typeof core
const coreDir = fileURLToPath(new URL('..', import.meta.url))

async function copyOfCore (t: { teardown: (fn: () => unknown) => void }, version: string, contract: string): Promise<Core> {
  const dir = await mkdtemp(join(tmpdir(), 'headroom-core-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp(join(coreDir, 'dist'), join(dir, 'dist'), { recursive: true })
  const pkg = JSON.parse(await readFile(join(coreDir, 'package.json'), 'utf8')) as Record<string, unknown>
  await writeFile(join(dir, 'package.json'), JSON.stringify({ ...pkg, version }))
  // the copy's own dependencies (@fastify/error, prom-client) resolve as installed for core
  await symlink(join(coreDir, 'node_modules'), join(dir, 'node_modules'), 'dir')
  const hub = join(dir, 'dist', 'hub.js')
  const source = await readFile(hub, 'utf8')
  const replaced = source.replace(`HUB_CONTRACT = '${core.HUB_CONTRACT}'`, `HUB_CONTRACT = '${contract}'`)
  if (replaced === source) throw new Error('HUB_CONTRACT not found in dist/hub.js: rebuild core (pnpm exec tsc -b)')
  await writeFile(hub, replaced)
  return await import(pathToFileURL(join(dir, 'dist', 'index.js')).href) as Core
}

/** a plugin built on one copy of core: it adds a check and a metric */
function pluginOf (copy: Core, name: string): FastifyPluginAsync {
  return fp(async (fastify: FastifyInstance) => {
    const hub = copy.getHub(fastify)
    hub.addCheck({ name, check: async () => ({ status: 'pass' }), owner: name })
  }, { name })
}

const [major, minor] = core.HUB_CONTRACT.split('.').map(Number) as [number, number]

t.test('compatible copies (same hub contract major) share one hub', async (t) => {
  const other = await copyOfCore(t, '9.9.9', `${major}.${minor + 3}`)
  t.not(other.getHub, core.getHub, 'really a second copy')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(pluginOf(core, 'a:ours'))
  // in an encapsulated context too: the hub is the server's
  await app.register(async (child) => { await child.register(pluginOf(other, 'b:theirs')) })
  await app.ready()
  t.equal(other.getHub(app), core.getHub(app), 'one hub')
  t.same(core.getHub(app).checks().map((c) => c.name).sort(), ['a:ours', 'b:theirs'])
})

for (const order of ['ours first', 'theirs first']) {
  t.test(`incompatible copies (another major) fail at registration, ${order}`, async (t) => {
    const other = await copyOfCore(t, `${major + 1}.0.0`, `${major + 1}.0`)
    const app = Fastify()
    t.teardown(() => app.close())
    const [first, second] = order === 'ours first' ? [core, other] : [other, core]
    await app.register(pluginOf(first, 'a:first'))
    app.register(pluginOf(second, 'b:second'))
    const err = await app.ready().then(() => null, (e: Error) => e)
    t.equal((err as { code?: string } | null)?.code, 'HEADROOM_CORE_INCOMPATIBLE_HUB')
    t.match(err?.message, /Two incompatible copies of @headroom\/core in one app/)
    t.match(err?.message, `speaks hub contract ${second.HUB_CONTRACT}`)
    t.match(err?.message, `one speaking ${first.HUB_CONTRACT}`)
    t.match(err?.message, /Install a single @headroom\/core/)
  })
}

t.test('incompatible copies in two separate apps of one process do not meet', async (t) => {
  const other = await copyOfCore(t, `${major + 1}.0.0`, `${major + 1}.0`)
  const one = Fastify()
  const two = Fastify()
  t.teardown(() => Promise.all([one.close(), two.close()]))
  await one.register(pluginOf(core, 'x'))
  await two.register(pluginOf(other, 'x'))
  await Promise.all([one.ready(), two.ready()])
  t.equal(core.getHub(one).contract, core.HUB_CONTRACT)
  t.equal(other.getHub(two).contract, `${major + 1}.0`)
})
