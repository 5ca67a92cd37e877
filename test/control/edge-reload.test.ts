import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { edgeSchema } from '../../src/edge/config.js';
import type { Decoder } from '../../src/edge/decode/index.js';
import { planEdge } from '../../src/edge/reconfigure.js';

// edge's reconfigure: the decoder (format) swaps in one assignment, the runners' batch and retry
// settings change in the objects they read each round; topicPattern and the rest wait for a restart.
describe('edge decoder and sink batch settings applied live', () => {
  it('swaps the decoder and the batch settings; topicPattern pending a restart', () => {
    const prev = edgeSchema.parse({ format: 'json' });
    const next = edgeSchema.parse({
      format: 'line',
      batch: { size: 50, intervalMs: 20 },
      retry: { minMs: 10, maxMs: 500 },
      topicPattern: 'tele/{device}/{measurement}',
    });
    let decoder: Decoder | null = null;
    const runner = { batchSize: 200, intervalMs: 100, retryMinMs: 100, retryMaxMs: 30_000 };
    const plan = planEdge(next, prev, { setDecoder: (d) => (decoder = d), runners: [runner] });
    assert.deepEqual([...plan.restart], ['topicPattern']);
    assert.equal(decoder, null, 'nothing changes before apply');
    assert.equal(runner.batchSize, 200);
    void plan.apply();
    assert.deepEqual(runner, { batchSize: 50, intervalMs: 20, retryMinMs: 10, retryMaxMs: 500 });
    // The new decoder reads line protocol on the old topic pattern.
    const points = (decoder as unknown as Decoder)(
      'telemetry/dev1/env',
      Buffer.from('env temp=21.5 1700000000000000000'),
      0,
    );
    assert.equal(points.length, 1);
    assert.equal(points[0]?.device, 'dev1');
    assert.throws(() => (decoder as unknown as Decoder)('telemetry/dev1/env', Buffer.from('{"temp":1}'), 0));
  });

  it('an unchanged format keeps the running decoder', () => {
    const prev = edgeSchema.parse({});
    const plan = planEdge(edgeSchema.parse({ batch: { size: 10 } }), prev, {
      setDecoder: () => assert.fail('decoder swapped'),
      runners: [],
    });
    assert.deepEqual([...plan.restart], []);
    void plan.apply();
  });
});
