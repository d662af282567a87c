import t from 'tap'
import { getHub, errors as coreErrors } from '@headroom/core'
import { seamSuite } from '@headroom/testing'
import { headroomSession as plugin } from '../src/index.js'

seamSuite(t, {
  packageName: '@headroom/session',
  check: 'redis:session',
  plugin,
  options: (redis, prefix) => ({ redis, keyPrefix: prefix, secret: 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz' }),
  checks: (app) => getHub(app).checks(),
  invalidOption: coreErrors.InvalidOption
})
