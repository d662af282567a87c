const mod = await import(process.env.SERVER as string)
const app = await mod.default(process.env)
let n = 0
app.addHook('onResponse', (_req: unknown, _reply: unknown, done: () => void) => { n++; done() })
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
const c0 = process.cpuUsage()
setTimeout(async () => {
  const c = process.cpuUsage(c0)
  console.log(`${process.env.EXP}: ${n} req, ${((c.user + c.system) / n).toFixed(1)} µs CPU/req`)
  await app.close(); process.exit(0)
}, Number(process.env.DURATION ?? 6000))
