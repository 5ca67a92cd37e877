import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Gauge } from 'prom-client';
import { Pulse, QUEUE_DEPTH_METRIC } from '../../src/console/pulse.js';
import { Health } from '../../src/core/health.js';
import { createMetrics } from '../../src/core/metrics.js';

/**
 * The console's pulse samples the inference queue depth per model from the registry's gauge (the
 * inference capability's kapok_inference_queue_depth, by model and version): summed over versions,
 * absent when inference is off.
 */
describe('console pulse: inference queue depth per model', () => {
  it('sums the gauge over versions per model, and leaves it out without the gauge', async () => {
    const metrics = createMetrics();
    const pulse = new Pulse(metrics, new Health(), 1000);
    assert.equal((await pulse.sample()).queues, undefined, 'no inference: no queues');
    const gauge = new Gauge({
      name: QUEUE_DEPTH_METRIC,
      help: 'Requests waiting per model version.',
      labelNames: ['model', 'version'],
      registers: [metrics.registry],
    });
    gauge.set({ model: 'resnet', version: '1' }, 3);
    gauge.set({ model: 'resnet', version: '2' }, 4);
    gauge.set({ model: 'mlp', version: '1' }, 0);
    const s = await pulse.sample();
    assert.deepEqual(s.queues, { mlp: 0, resnet: 7 });
    assert.deepEqual(
      pulse.history.at(-1)?.queues,
      { mlp: 0, resnet: 7 },
      'kept in the history sent on connect',
    );
  });
});
