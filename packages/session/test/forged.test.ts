import t from 'tap'
import { sharedBackend } from './backends.js'
import { forged } from './suite.js'

t.test('a tampered cookie, a cookie signed with a retired secret, an id not in the store: each a fresh anonymous session, never a 500', async (t) => {
  await forged(t, await sharedBackend(t))
})
