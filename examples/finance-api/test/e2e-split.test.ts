import t from 'tap'
import { split } from './backends.js'
import { e2eSuite } from './e2e-suite.js'

// SESSION_REDIS_URL and CACHE_REDIS_URL on two different Redis servers, no REDIS_URL
e2eSuite(t, split)
