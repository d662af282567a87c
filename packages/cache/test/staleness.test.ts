import t from 'tap'
import { standalone } from './backends.js'
import { staleness } from './suites/staleness.js'

staleness(t, standalone)
