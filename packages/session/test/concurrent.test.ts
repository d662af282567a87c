import t from 'tap'
import { sharedBackend } from './backends.js'
import { concurrentFields } from './suite.js'

t.test('two requests of one session changing different top-level fields at the same time both persist', async (t) => {
  await concurrentFields(t, await sharedBackend(t))
})
