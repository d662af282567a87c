import * as Sentry from '@sentry/node'
import type { ErrorReporterFactory } from '../src/error-reporting.js'

const reporter: ErrorReporterFactory = ({ service, version, env }) => {
  Sentry.init({
    dsn: process.env.SENTRY_DSN,
    release: `${service}@${version}`,
    environment: env,
    // no request data, headers, cookies, bodies or user: the report carries what it may
    dataCollection: { userInfo: false, cookies: false, httpHeaders: false, httpBodies: [], urlQueryParams: false },
    // no handlers of its own (the example reports unhandled rejections once), no request recording
    defaultIntegrations: false
    // (enableOpenTelemetrySetup stays false: tracing.ts's provider keeps exporting the spans)
  })
  return {
    report ({ error, kind, requestId, method, route, statusCode, traceId, spanId }) {
      Sentry.captureException(error, {
        tags: { kind, request_id: requestId, route: route && `${method} ${route}`, status_code: statusCode },
        contexts: traceId && spanId ? { trace: { trace_id: traceId, span_id: spanId } } : {}
      })
    },
    flush: (timeoutMs) => Sentry.flush(timeoutMs)
  }
}
export default reporter
