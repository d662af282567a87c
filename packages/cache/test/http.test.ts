import t from 'tap'
import { standalone } from './backends.js'
import { httpCache } from './suites/http.js'

httpCache(t, standalone)
