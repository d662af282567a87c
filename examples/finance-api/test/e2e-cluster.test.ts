import t from 'tap'
import { onCluster } from './backends.js'
import { e2eSuite } from './e2e-suite.js'

// REDIS_URL=redis+cluster://…: sessions, rate limits and the cache on one private 3-master cluster
e2eSuite(t, onCluster(t))
