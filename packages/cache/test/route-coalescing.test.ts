import t from 'tap'
import { standalone } from './backends.js'
import { routeCoalescing } from './suites/route-coalescing.js'

routeCoalescing(t, standalone)
