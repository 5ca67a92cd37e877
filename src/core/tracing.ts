import {
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  RandomIdGenerator,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';

export interface TracingOptions {
  serviceName: string;
  otlpEndpoint: string | null;
  headers?: Record<string, string>;
  sampleRatio: number;
  attributes?: Record<string, string>;
  /** Extra processors (tests use an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
}

export interface Tracing {
  readonly tracer: Tracer;
  /**
   * Whether the active span follows async code (AsyncLocalStorage context manager). Installed only
   * when spans are recorded: on Node 20 AsyncLocalStorage runs on promise hooks, which cost about a
   * quarter of gateway throughput (measured). Without it, code that needs the request's span takes
   * it from the request (`req.kapokSpan`), and request log lines get trace ids from a child logger.
   */
  readonly asyncContext: boolean;
  /** Context carried by W3C `traceparent`/`tracestate` headers; `valid` is false for a malformed header. */
  extract(headers: Record<string, string | string[] | undefined>): { ctx: Context; valid: boolean };
  /** Writes `traceparent` (and `tracestate`) for the active span into outgoing headers. */
  inject(headers: Record<string, string>, ctx?: Context): Record<string, string>;
  /**
   * `base` plus `traceparent` (and `tracestate`) naming `span`: what inject() writes for a context
   * holding that span, without building the context or going through the propagator (one upstream
   * call per gateway request pays it).
   */
  spanHeaders(base: Readonly<Record<string, string>>, span: Span): Record<string, string>;
  /** Runs fn inside a new span, ending it (and recording a thrown error) when fn settles. */
  withSpan<T>(name: string, kind: SpanKind, fn: (span: Span) => Promise<T>): Promise<T>;
  /** Flushes pending spans and stops the exporter. */
  shutdown(): Promise<void>;
}

let contextManagerInstalled = false;

/** Longest a stop waits for the last spans to reach the collector. */
const SHUTDOWN_FLUSH_MS = 2000;

/**
 * OpenTelemetry with a provider owned by this instance (not the global one, so tests can hold
 * several). Spans are always created (trace ids appear in logs and outgoing headers); they are
 * recorded and exported over OTLP/HTTP only when `otlpEndpoint` is set (or a test adds a processor). The exporter is loaded lazily so a
 * default start does not pay for it.
 */
export async function createTracing(opts: TracingOptions): Promise<Tracing> {
  const processors: SpanProcessor[] = [...(opts.spanProcessors ?? [])];
  if (opts.otlpEndpoint) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    const exporter = new OTLPTraceExporter({
      url: opts.otlpEndpoint,
      headers: opts.headers ?? {},
      timeoutMillis: 10_000,
    });
    // Bounded queue: when the collector is down we drop spans rather than grow memory.
    processors.push(
      new BatchSpanProcessor(exporter, {
        maxQueueSize: 2048,
        maxExportBatchSize: 512,
        scheduledDelayMillis: 2000,
      }),
    );
  }
  if (processors.length && !contextManagerInstalled) {
    // The context manager is process-wide by nature (it is how async code finds its active span).
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    contextManagerInstalled = true;
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': opts.serviceName, ...opts.attributes }),
    // With nowhere to send spans, new root spans are not recorded (recording costs ~15% of gateway
    // throughput): they still get ids (logs, traceparent), and a sampled incoming parent is still
    // followed, so a trace started upstream stays whole.
    sampler: new ParentBasedSampler({
      root: new TraceIdRatioBasedSampler(processors.length ? opts.sampleRatio : 0),
    }),
    spanProcessors: processors,
  });
  // With no processor nothing is recorded, whatever the sampler says: spans that only carry ids.
  const tracer = processors.length ? provider.getTracer('kapok') : idOnlyTracer();
  const propagator = new W3CTraceContextPropagator();

  return {
    tracer,
    get asyncContext() {
      return contextManagerInstalled;
    },
    extract(headers) {
      // No traceparent (most requests): what the propagator would return, without going through it.
      if (headers.traceparent === undefined) return { ctx: ROOT_CONTEXT, valid: true };
      const ctx = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      const valid = trace.getSpanContext(ctx) !== undefined;
      return { ctx, valid };
    },
    inject(headers, ctx = context.active()) {
      propagator.inject(ctx, headers, defaultTextMapSetter);
      return headers;
    },
    spanHeaders(base, span) {
      const sc = span.spanContext();
      if (!isSpanContextValid(sc)) return { ...base };
      // Exactly what W3CTraceContextPropagator.inject writes (flags are 0 or 1: sampled).
      const headers: Record<string, string> = {
        ...base,
        traceparent: `00-${sc.traceId}-${sc.spanId}-0${Number(sc.traceFlags || 0).toString(16)}`,
      };
      if (sc.traceState) headers.tracestate = sc.traceState.serialize();
      return headers;
    },
    withSpan(name, kind, fn) {
      return tracer.startActiveSpan(name, { kind }, async (span) => {
        try {
          return await fn(span);
        } catch (err) {
          span.recordException(err as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
          throw err;
        } finally {
          span.end();
        }
      });
    },
    // The exporter retries an unreachable collector until its 10 s timeout; a stop must not wait
    // for that: spans not flushed within SHUTDOWN_FLUSH_MS are dropped.
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch(() => {}),
        new Promise<void>((r) => {
          timer = setTimeout(r, SHUTDOWN_FLUSH_MS);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}

/**
 * The tracer when no span processor is configured (no OTLP endpoint: the default). Spans carry ids
 * for logs and the traceparent sent upstream, and record nothing, as the SDK's do here: its sampler
 * (ratio 0 for new traces) makes a root span non-recording, and a span under a sampled parent,
 * though recording, reaches no processor. The SDK tracer gets there through its sampler, attribute
 * checks and span limits on every call: a gateway request's two spans took 1.8 µs that way against
 * 0.6 µs here, in a loop (`bench/gateway-parts.ts` times them). Same ids and flags as the SDK's:
 * under a valid parent the trace id, trace state and sampled flag are kept (the trace continues
 * upstream), a new trace gets a random trace id and is not sampled.
 */
export function idOnlyTracer(): Tracer {
  const ids = new RandomIdGenerator();
  const startSpan = (_name: string, options?: SpanOptions, ctx: Context = context.active()): Span => {
    const parent = options?.root ? undefined : trace.getSpanContext(ctx);
    const valid = parent !== undefined && isSpanContextValid(parent);
    return trace.wrapSpanContext({
      traceId: valid ? parent.traceId : ids.generateTraceId(),
      spanId: ids.generateSpanId(),
      traceFlags: valid ? parent.traceFlags & TraceFlags.SAMPLED : TraceFlags.NONE,
      ...(valid && parent.traceState ? { traceState: parent.traceState } : {}),
    });
  };
  // startActiveSpan(name, fn), (name, options, fn) or (name, options, context, fn), as the API's.
  const startActiveSpan = (name: string, ...rest: unknown[]): unknown => {
    const fn = rest[rest.length - 1] as (span: Span) => unknown;
    const options = rest.length >= 2 ? (rest[0] as SpanOptions | undefined) : undefined;
    const ctx = rest.length >= 3 ? (rest[1] as Context) : context.active();
    const span = startSpan(name, options, ctx);
    return context.with(trace.setSpan(ctx, span), fn, undefined, span);
  };
  return { startSpan, startActiveSpan } as Tracer;
}

export { SpanKind, SpanStatusCode };
