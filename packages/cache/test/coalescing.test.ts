import t from 'tap'
import { standalone } from './backends.js'
import { coalescing } from './suites/coalescing.js'

coalescing(t, standalone)
