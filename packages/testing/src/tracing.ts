import { context, type Span, trace } from '@opentelemetry/api'
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'

/**
 * A real OpenTelemetry SDK for a test process: NodeTracerProvider (whose
 * `register()` installs the AsyncLocalStorage context manager, so a span's
 * children are found across awaits) exporting every ended span to memory.
 * Import from `@headroom/testing/tracing`, apart from the main entry, so
 * tests that do not trace never load the SDK. One per process: the
 * provider is global.
 */
export interface Tracing {
  /** the spans ended so far, in the order they ended */
  spans (): ReadableSpan[]
  /** the ended spans of that name */
  named (name: string): ReadableSpan[]
  /** the span's parent among the ended spans, if any */
  parentOf (span: ReadableSpan): ReadableSpan | undefined
  /** runs `fn` inside a new active span (a stand-in for an HTTP server span), ended afterwards */
  inSpan<T> (name: string, fn: (span: Span) => Promise<T>): Promise<T>
  /** every string in span names, attribute values and event attributes: what a leak check searches */
  strings (): string[]
  reset (): void
  shutdown (): Promise<void>
}

export function inMemoryTracing (): Tracing {
  const exporter = new InMemorySpanExporter()
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  provider.register()
  const tracer = trace.getTracer('@headroom/testing')
  const spans = (): ReadableSpan[] => exporter.getFinishedSpans()
  return {
    spans,
    named: (name) => spans().filter((s) => s.name === name),
    parentOf: (span) => {
      const parent = span.parentSpanContext?.spanId
      return parent === undefined ? undefined : spans().find((s) => s.spanContext().spanId === parent)
    },
    inSpan: (name, fn) => tracer.startActiveSpan(name, async (span) => {
      try {
        return await fn(span)
      } finally {
        span.end()
      }
    }),
    strings: () => spans().flatMap((s) => [
      s.name,
      s.status.message ?? '',
      ...Object.values(s.attributes).map(String),
      ...s.events.flatMap((e) => [e.name, ...Object.values(e.attributes ?? {}).map(String)])
    ]),
    reset: () => exporter.reset(),
    shutdown: async () => {
      await provider.shutdown()
      trace.disable()
      context.disable()
    }
  }
}
