// Run by summary-cpu.sh: node --import tsx summary-cpu-child.mts <checkout> <database url> <first user id> <cache on|off>
// Builds that checkout's example as the capacity run does, logs 8 seeded users in and prints
// the process's CPU µs per GET /api/summary (fastify.inject, 16 in flight) for 4 batches.
const [tree, url, first, cache] = process.argv.slice(2)
const M = new URL('../../examples/finance-api', import.meta.url).pathname
const { serverEnv } = await import(`${M}/bench/load.ts`)
const { seedEmail, SEED_PASSWORD } = await import(`${M}/src/seed.ts`)
const build = (await import(`${tree}/benchmarks/capacity/server.ts`)).default
const env = { ...process.env, ...serverEnv(url, 'redis://127.0.0.1:6379', `inj-${process.pid}:`), NODE_ENV: 'production', CAPACITY_CACHE: cache }
const app = await build(env)
await app.ready()
const h = { 'x-forwarded-proto': 'https' }
const cookies: string[] = []
for (let i = 0; i < 8; i++) {
  const res = await app.inject({ method: 'POST', url: '/api/auth/login', headers: { ...h, 'content-type': 'application/json' }, payload: { email: seedEmail(Number(first) + i * 25), password: SEED_PASSWORD } })
  if (res.statusCode !== 200) throw new Error('login ' + res.statusCode + res.body)
  cookies.push(String(res.headers['set-cookie']).split(';')[0]!)
}
const N = Number(process.env.N ?? 2000), C = 16
const load = async (n: number) => { let next = 0; let bad = 0; await Promise.all(Array.from({ length: C }, async () => { while (next < n) { const i = next++; const r = await app.inject({ url: '/api/summary', headers: { ...h, cookie: cookies[i % 8]! } }); if (r.statusCode !== 200) bad++ } })); return bad }
await load(1500)
const out: string[] = []
for (let b = 0; b < 4; b++) {
  const c0 = process.cpuUsage(); const bad = await load(N); const c = process.cpuUsage(c0)
  out.push(((c.user + c.system) / N).toFixed(0) + (bad ? `(${bad} bad)` : ''))
}
console.log(out.join(' '))
await app.close()
process.exit(0)
