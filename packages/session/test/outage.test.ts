import t from 'tap'
import { privateBackend } from './backends.js'
import { outage } from './suite.js'

t.test('a private Redis killed while 50 logged-in clients keep requesting: zero 5xx, bounded latency, write-back after restart', async (t) => {
  await outage(t, await privateBackend(t))
})

// SIGSTOP keeps the connection open and answers nothing: the command timeout, not a closed socket, has to notice
t.test('a private Redis that stops answering (SIGSTOP): every request within the command timeout + 50 ms, then recovery', async (t) => {
  const backend = await privateBackend(t)
  const pid = () => {
    const p = backend.pid()
    if (!p) throw new Error('no redis-server pid')
    return p
  }
  t.teardown(() => { try { process.kill(pid(), 'SIGCONT') } catch {} })
  await outage(t, {
    ...backend,
    kill: async () => { process.kill(pid(), 'SIGSTOP') },
    start: async () => { process.kill(pid(), 'SIGCONT') }
  })
})
