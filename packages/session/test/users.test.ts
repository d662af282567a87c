import t from 'tap'
import { sharedBackend } from './backends.js'
import { logoutEverywhere } from './suite.js'

t.test('log-out-everywhere of a user with 3 sessions invalidates all 3 and no other user\'s', async (t) => {
  await logoutEverywhere(t, await sharedBackend(t))
})
