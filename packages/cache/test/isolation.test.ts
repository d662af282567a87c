import t from 'tap'
import { standalone } from './backends.js'
import { isolation } from './suites/isolation.js'

isolation(t, standalone)
