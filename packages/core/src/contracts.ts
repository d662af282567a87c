// The part of core that needs no Redis: what @headroom/pool and
// @headroom/health use. Its declarations import nothing from ioredis, so a
// user of those two type-checks (skipLibCheck: false) without ioredis
// installed; `@headroom/core` itself re-exports all of this plus the Redis side.
export { getHub, metric, kHub, HUB_CONTRACT, type Hub, type HealthCheck, type HealthCheckResult, type CheckRegistration } from './hub.js'
export { tracer, childSpan, withSpan, failSpan, recordingSpan } from './tracing.js'
export { rejectUnknownOptions, closest, type OptionNames } from './options.js'
export { FastHistogram, type Observer } from './histogram.js'
export { raceTimeout } from './timeout.js'
