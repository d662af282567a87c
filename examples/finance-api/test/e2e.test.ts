import t from 'tap'
import { standalone } from './backends.js'
import { e2eSuite } from './e2e-suite.js'

e2eSuite(t, standalone)
