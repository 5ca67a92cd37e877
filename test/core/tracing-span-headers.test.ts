import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { context, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createTracing } from '../../src/core/tracing.js';

// spanHeaders() is the gateway's fast path for upstream trace headers: it must write what the W3C
// propagator (inject) writes for the same span, recorded or not, with or without tracestate.
describe('tracing.spanHeaders', () => {
  it('writes what inject() writes for a context holding the span, and keeps the base headers', async () => {
    for (const sampleRatio of [0, 1]) {
      const processors = sampleRatio ? [new SimpleSpanProcessor(new InMemorySpanExporter())] : [];
      const tracing = await createTracing({
        serviceName: 't',
        otlpEndpoint: null,
        sampleRatio,
        spanProcessors: processors,
      });
      const span = tracing.tracer.startSpan('x', { kind: SpanKind.CLIENT });
      const base = { 'content-type': 'application/json', authorization: 'Bearer k' };
      const fast = tracing.spanHeaders(base, span);
      const slow = tracing.inject({ ...base }, trace.setSpan(context.active(), span));
      assert.deepEqual(fast, slow);
      assert.match(fast.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      assert.equal(fast.traceparent?.endsWith(sampleRatio ? '-01' : '-00'), true);
      assert.deepEqual(base, { 'content-type': 'application/json', authorization: 'Bearer k' }); // not mutated
      span.end();
      await tracing.shutdown();
    }
  });

  it('carries tracestate, and writes no trace header for an invalid span context', async () => {
    const tracing = await createTracing({ serviceName: 't', otlpEndpoint: null, sampleRatio: 0 });
    const parent = tracing.extract({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'vendor=abc,other=1',
    }).ctx;
    const child = tracing.tracer.startSpan('c', {}, parent);
    const fast = tracing.spanHeaders({}, child);
    assert.deepEqual(fast, tracing.inject({}, trace.setSpan(parent, child)));
    assert.equal(fast.tracestate, 'vendor=abc,other=1');
    assert.match(fast.traceparent ?? '', /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    const invalid = trace.wrapSpanContext({
      traceId: '0'.repeat(32),
      spanId: '0'.repeat(16),
      traceFlags: TraceFlags.NONE,
    });
    assert.deepEqual(tracing.spanHeaders({ a: 'b' }, invalid), { a: 'b' });
    child.end();
    await tracing.shutdown();
  });
});
