// CPU per query of @headroom/pool from two checkouts (A and B, each built) against a raw
// pg.Pool, in one process, alternating. Usage (from the repository root):
//   node benchmarks/ab/pool-cpu.mjs <checkout A> <checkout B>     (PREP=1: named prepared statements)
// Prints per round and the medians: CPU µs per query (process.cpuUsage, so it depends
// less on what else the machine runs than req/s do) and each checkout's ratio to raw pg.Pool.
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
const [dirA, dirB] = process.argv.slice(2).map((d) => resolve(d))
if (!dirA || !dirB) { console.error('usage: node benchmarks/ab/pool-cpu.mjs <checkout A> <checkout B>'); process.exit(2) }
const req = createRequire(`${dirB}/packages/pool/package.json`)
const Fastify = (await import(req.resolve('fastify'))).default
const pg = (await import(req.resolve('pg'))).default
const before = (await import(`${dirA}/packages/pool/dist/index.js`)).default
const after = (await import(`${dirB}/packages/pool/dist/index.js`)).default
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const admin = new pg.Client({ connectionString: url }); await admin.connect()
const table = `poolab_${process.pid}`
await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL)`)
await admin.query(`INSERT INTO ${table} SELECT i, 'owner ' || i, i * 1.5 FROM generate_series(1, 10000) i`)
const sql = `SELECT id, owner, balance FROM ${table} WHERE id = $1`
const raw = new pg.Pool({ connectionString: url, max: 25 })
const apps = {}
for (const [name, plugin] of [['before', before], ['after', after]]) {
  const app = Fastify({ logger: false }); await app.register(plugin, { primary: url, max: 25 }); await app.ready(); apps[name] = app
}
const P = process.env.PREP === '1'
const q = { raw: (i) => P ? raw.query({ name: 'poolab', text: sql, values: [i] }) : raw.query(sql, [i]), before: (i) => apps.before.db.query(sql, [i], P ? { prepare: true } : undefined), after: (i) => apps.after.db.query(sql, [i], P ? { prepare: true } : undefined) }
const N = Number(process.env.N ?? 20000); const C = 25
async function measure (f) {
  let next = 0
  const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint()
  await Promise.all(Array.from({ length: C }, async () => { while (next < N) { const i = next++; await f(1 + (i * 97) % 10000) } }))
  const c = process.cpuUsage(c0); const t = Number(process.hrtime.bigint() - t0) / 1e6
  return { cpuUs: (c.user + c.system) / N, qps: N / t * 1000 }
}
for (const k of Object.keys(q)) await measure(q[k]) // warm up
const res = { raw: [], before: [], after: [] }
const orders = [['raw', 'before', 'after'], ['after', 'before', 'raw'], ['before', 'after', 'raw'], ['raw', 'after', 'before']]
for (let r = 0; r < Number(process.env.ROUNDS ?? 8); r++) {
  for (const k of orders[r % orders.length]) res[k].push(await measure(q[k]))
  const line = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, v.at(-1).cpuUs.toFixed(1) + 'us ' + v.at(-1).qps.toFixed(0) + 'q/s']))
  console.log('round', r + 1, JSON.stringify(line))
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
for (const k of ['before', 'after']) { // before = A, after = B
  const cpuRatio = med(res[k].map((x, i) => res.raw[i].cpuUs / x.cpuUs))
  const qpsRatio = med(res[k].map((x, i) => x.qps / res.raw[i].qps))
  console.log(k, 'median cpu/query', med(res[k].map((x) => x.cpuUs)).toFixed(1), 'us; raw cpu / its cpu', cpuRatio.toFixed(3), '; its q/s / raw q/s', qpsRatio.toFixed(3))
}
console.log('raw median cpu/query', med(res.raw.map((x) => x.cpuUs)).toFixed(1))
await admin.query(`DROP TABLE ${table}`); await admin.end(); await raw.end(); for (const a of Object.values(apps)) await a.close()
