import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createGatewayMetrics } from '../../src/gateway/metrics.js';

/** The sample line of a metric with exactly these labels (prom-client writes them in labelNames order). */
const sample = (text: string, name: string, labels: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));

describe('gateway metrics', () => {
  it('counters summed between scrapes are cumulative on every scrape, per label set', async () => {
    const registry = new Registry();
    const m = createGatewayMetrics(registry, () => ({}));
    const a = { endpoint: 'chat', model: 'qwen', target: 'p/m', status: '200' } as const;
    const b = { endpoint: 'chat', model: 'qwen', target: 'p/m', status: '502' } as const;
    m.requests.inc(a);
    m.requests.inc({ ...a }); // an equal label object from another call
    m.requests.inc(b);
    m.tokens.inc({ model: 'qwen', target: 'p/m', direction: 'out' }, 0);
    let text = await registry.metrics();
    const name = 'kapok_gateway_requests_total';
    assert.equal(
      sample(text, name, 'endpoint="chat",model="qwen",target="p/m",status="200"'),
      `${name}{endpoint="chat",model="qwen",target="p/m",status="200"} 2`,
    );
    assert.match(sample(text, name, 'endpoint="chat",model="qwen",target="p/m",status="502"') ?? '', / 1$/);
    // An increment by 0 still makes the series appear, as prom-client's own inc(labels, 0) does.
    assert.match(
      sample(text, 'kapok_gateway_tokens_total', 'model="qwen",target="p/m",direction="out"') ?? '',
      / 0$/,
    );

    m.requests.inc(a, 3);
    text = await registry.metrics();
    assert.match(sample(text, name, 'endpoint="chat",model="qwen",target="p/m",status="200"') ?? '', / 5$/);
    assert.match(sample(text, name, 'endpoint="chat",model="qwen",target="p/m",status="502"') ?? '', / 1$/);
    // get() collects too (registry.metrics() calls it for every metric).
    const got = await registry.getSingleMetric(name)?.get();
    assert.equal(got?.values.find((v) => v.labels.status === '200')?.value, 5);
  });

  it('a label value that matches another label set in another position is its own series', async () => {
    const registry = new Registry();
    const m = createGatewayMetrics(registry, () => ({}));
    m.attempts.inc({ target: 'x', outcome: 'ok' });
    m.attempts.inc({ target: 'ok', outcome: 'x' } as never);
    const text = await registry.metrics();
    assert.match(
      sample(text, 'kapok_gateway_upstream_attempts_total', 'target="x",outcome="ok"') ?? '',
      / 1$/,
    );
    assert.match(
      sample(text, 'kapok_gateway_upstream_attempts_total', 'target="ok",outcome="x"') ?? '',
      / 1$/,
    );
  });

  it('a negative or non-finite increment throws at the call, not at the next scrape', () => {
    const m = createGatewayMetrics(new Registry(), () => ({}));
    const labels = { model: 'qwen', target: 'p/m', direction: 'in' } as const;
    assert.throws(() => m.tokens.inc(labels, -1), /increment must be a finite number >= 0, got -1/);
    assert.throws(() => m.tokens.inc(labels, Number.NaN), /got NaN/);
  });
});
