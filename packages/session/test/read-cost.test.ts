import t from 'tap'
import { privateBackend } from './backends.js'
import { logoutEverywhere, readCost } from './suite.js'

// a private Redis: INFO commandstats then counts this test's commands only
t.test('an authenticated read of an unchanged session is exactly one Redis read and no write until the touch threshold', async (t) => {
  await readCost(t, await privateBackend(t))
})

t.test('log-out-everywhere costs O(the user\'s sessions): no SCAN', async (t) => {
  await logoutEverywhere(t, await privateBackend(t))
})
