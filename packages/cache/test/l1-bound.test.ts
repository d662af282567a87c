import t from 'tap'
import { standalone } from './backends.js'
import { l1Bound } from './suites/l1-bound.js'

l1Bound(t, standalone)
