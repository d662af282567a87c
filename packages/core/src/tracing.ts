import { context, type Attributes, INVALID_SPAN_CONTEXT, type Span, type SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api'

/**
 * Tracing through @opentelemetry/api only. Without a registered SDK every
 * span is a non-recording one and every helper here returns before building
 * an attribute object, so the packages cost next to nothing untraced.
 * Attributes carry names, counts and outcomes; never a parameter, a key that
 * may hold a user id, a session id, a cookie or an address of a client.
 */

/**
 * The tracer of a headroom package. `trace.getTracer` hands out a proxy, so a
 * tracer taken when the plugin registers still reaches an SDK registered later.
 */
export function tracer (name: string): Tracer {
  return trace.getTracer(name)
}

/**
 * Marks a span failed: status ERROR and `error.type` (the error's code, e.g. a
 * SQLSTATE or `HEADROOM_*`, else its class name). The message is left out on
 * purpose: a driver's message can quote a value (`invalid input syntax for
 * type integer: "…"`), and a span goes wherever the operator ships traces.
 */
export function failSpan (span: Span, err: unknown): void {
  if (!span.isRecording()) return
  const code = (err as { code?: unknown } | null)?.code
  const type = typeof code === 'string' ? code : err instanceof Error ? err.name : 'error'
  span.setAttribute('error.type', type)
  span.setStatus({ code: SpanStatusCode.ERROR, message: type })
}

/** what a package gets outside a recording span: records nothing, costs nothing */
const UNTRACED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT)

/**
 * A span for a piece of work of a package, made only as the child of a
 * recording span (a traced request or job): the SDK's parent-based samplers
 * would sample out the child of a sampled-out parent anyway, and at 10 %
 * sampling the other 90 % of requests should not pay for span ids and
 * sampler calls on every query and session read. Work outside any trace
 * (health checks, timers) makes no root spans of its own.
 */
export function childSpan (tracer: Tracer, name: string, options?: { kind?: SpanKind, attributes?: Attributes }): Span {
  const parent = trace.getActiveSpan()
  if (parent === undefined || !parent.isRecording()) return UNTRACED
  return tracer.startSpan(name, options)
}

/**
 * Runs `fn` inside a new active span (children started in `fn` are its
 * children, across awaits when the SDK has an AsyncLocalStorage context
 * manager), fails it on a throw and ends it. `attributes` is called only when
 * the span records; outside a recording span (`childSpan`) `fn` just runs.
 */
export async function withSpan<T> (
  tracer: Tracer,
  name: string,
  options: { kind?: SpanKind, attributes?: () => Attributes },
  fn: (span: Span) => Promise<T>
): Promise<T> {
  const span = childSpan(tracer, name, options.kind === undefined ? undefined : { kind: options.kind })
  // no context switch for a span that records nothing: `fn`'s work stays in the caller's context
  if (!span.isRecording()) return fn(span)
  if (options.attributes !== undefined) span.setAttributes(options.attributes())
  try {
    return await context.with(trace.setSpan(context.active(), span), fn, undefined, span)
  } catch (err) {
    failSpan(span, err)
    throw err
  } finally {
    span.end()
  }
}

/**
 * The span of the current request (or whatever span is active), if it
 * records: for attributes that describe a decision rather than a piece of
 * work of its own (a rate-limit verdict, a cache tier).
 */
export function recordingSpan (): Span | undefined {
  const span = trace.getActiveSpan()
  return span !== undefined && span.isRecording() ? span : undefined
}
