import t from 'tap'
import { standalone } from './backends.js'
import { invalidation } from './suites/invalidation.js'

invalidation(t, standalone)
