import t from 'tap'
import { getHub, errors as coreErrors } from '@headroom/core'
import { seamSuite } from '@headroom/testing'
import plugin from '../src/index.js'

seamSuite(t, {
  packageName: '@headroom/cache',
  check: 'redis:cache',
  plugin,
  options: (redis, prefix) => ({ redis, prefix }),
  checks: (app) => getHub(app).checks(),
  invalidOption: coreErrors.InvalidOption
})
