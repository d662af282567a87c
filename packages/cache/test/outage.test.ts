import t from 'tap'
import { standalone } from './backends.js'
import { outage } from './suites/outage.js'

outage(t, standalone)
