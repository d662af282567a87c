import t from 'tap'
import { privateBackend } from './backends.js'
import { outage } from './suite.js'

t.test('a private Redis killed while 50 logged-in clients keep requesting: zero 5xx, bounded latency, write-back after restart', async (t) => {
  await outage(t, await privateBackend(t))
})
