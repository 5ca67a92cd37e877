import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Context,
  createTraceState,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { createTracing, idOnlyTracer } from '../../src/core/tracing.js';

// With no span processor Kapok uses idOnlyTracer instead of the SDK's tracer: it must give spans the
// ids and flags the SDK gives them with the same sampler (ratio 0 for new traces, parents followed).
const sdk = new BasicTracerProvider({
  sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }),
}).getTracer('t');
const ours = idOnlyTracer();

const parentCtx = (flags: number, state?: string): Context =>
  trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: flags,
    isRemote: true,
    ...(state ? { traceState: createTraceState(state) } : {}),
  });

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

describe('idOnlyTracer (tracing with no processor)', () => {
  it('a new trace: fresh random ids, not sampled, not recording, as the SDK at ratio 0', () => {
    const seen = new Set<string>();
    for (const t of [sdk, ours]) {
      const s = t.startSpan('r', { kind: SpanKind.SERVER, attributes: { a: 1 } }, ROOT_CONTEXT);
      const sc = s.spanContext();
      assert.match(sc.traceId, HEX32);
      assert.match(sc.spanId, HEX16);
      assert.equal(sc.traceFlags, TraceFlags.NONE);
      assert.equal(s.isRecording(), false);
      seen.add(sc.traceId);
    }
    const a = ours.startSpan('a', {}, ROOT_CONTEXT).spanContext();
    const b = ours.startSpan('b', {}, ROOT_CONTEXT).spanContext();
    assert.notEqual(a.traceId, b.traceId, 'each new trace its own id');
    assert.notEqual(a.spanId, b.spanId);
    assert.equal(seen.size, 2);
  });

  it('under a parent: its trace id, sampled flag and trace state kept, a new span id, as the SDK', () => {
    for (const [flags, state] of [
      [TraceFlags.SAMPLED, 'vendor=abc,other=1'],
      [TraceFlags.NONE, undefined],
      [TraceFlags.SAMPLED, undefined],
    ] as const) {
      const ctx = parentCtx(flags, state);
      const mine = ours.startSpan('c', { kind: SpanKind.CLIENT }, ctx).spanContext();
      const theirs = sdk.startSpan('c', { kind: SpanKind.CLIENT }, ctx).spanContext();
      assert.equal(mine.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
      assert.equal(mine.traceId, theirs.traceId);
      assert.equal(mine.traceFlags, theirs.traceFlags, `flags ${flags}`);
      assert.equal(mine.traceState?.serialize(), theirs.traceState?.serialize());
      assert.match(mine.spanId, HEX16);
      assert.notEqual(mine.spanId, '00f067aa0ba902b7');
    }
  });

  it('an invalid parent starts a new trace; root: true ignores the parent', () => {
    const invalid = ours.startSpan('x', {}, trace.setSpanContext(ROOT_CONTEXT, INVALID_SPAN_CONTEXT));
    assert.match(invalid.spanContext().traceId, HEX32);
    assert.notEqual(invalid.spanContext().traceId, INVALID_SPAN_CONTEXT.traceId);
    const root = ours.startSpan('y', { root: true }, parentCtx(TraceFlags.SAMPLED)).spanContext();
    assert.notEqual(root.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(root.traceFlags, TraceFlags.NONE);
  });

  it('startActiveSpan takes (name, fn), (name, options, fn) and (name, options, context, fn)', () => {
    let got: Span | undefined;
    const r1 = ours.startActiveSpan('a', (s) => {
      got = s;
      return 1;
    });
    assert.equal(r1, 1);
    assert.match(String(got?.spanContext().spanId), HEX16);
    const r2 = ours.startActiveSpan('b', { kind: SpanKind.INTERNAL }, (s) => s.spanContext().traceFlags);
    assert.equal(r2, TraceFlags.NONE);
    const r3 = ours.startActiveSpan('c', {}, parentCtx(TraceFlags.SAMPLED), (s) => s.spanContext());
    assert.equal(r3.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(r3.traceFlags, TraceFlags.SAMPLED);
  });

  it('createTracing uses it only when no processor takes spans', async () => {
    const none = await createTracing({ serviceName: 't', otlpEndpoint: null, sampleRatio: 1 });
    assert.equal(none.tracer.startSpan('x').isRecording(), false);
    // A sampled incoming parent: the SDK would record (for no one); the ids and flags are what count.
    const child = none.tracer.startSpan(
      'y',
      {},
      none.extract({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }).ctx,
    );
    assert.match(
      none.spanHeaders({}, child).traceparent ?? '',
      /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/,
    );
    const exporter = new InMemorySpanExporter();
    const recorded = await createTracing({
      serviceName: 't',
      otlpEndpoint: null,
      sampleRatio: 1,
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const s = recorded.tracer.startSpan('z');
    assert.equal(s.isRecording(), true);
    s.end();
    assert.equal(exporter.getFinishedSpans().length, 1);
    await none.shutdown();
    await recorded.shutdown();
  });
});
