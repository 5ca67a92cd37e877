import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { zoneSchema } from '../../src/v2x/config.js';
import { Engine } from '../../src/v2x/engine.js';
import { encodeFrame } from '../../src/v2x/frames.js';
import { planV2x } from '../../src/v2x/reconfigure.js';
import { simConfig } from '../../src/v2x/sim/replay.js';
import { loadScenarios } from '../../src/v2x/sim/scenario.js';
import { World } from '../../src/v2x/sim/world.js';

// v2x's reconfigure on a real engine: zones and risk thresholds swap live, risk.rangeM and the
// intake keys are reported as needing a restart and keep their values; zones put through the API stay.
const DIR = new URL('../../src/v2x/sim/scenarios/', import.meta.url).pathname;
const world = new World({ scenarios: loadScenarios(DIR).slice(0, 1), background: 0 });
const T0 = 1_767_225_600_000;
const FAR = {
  id: 'far',
  geometry: {
    type: 'Polygon',
    coordinates: [
      [
        [100, 10],
        [100.01, 10],
        [100.01, 10.01],
        [100, 10.01],
        [100, 10],
      ],
    ],
  },
};

describe('v2x zones and risk thresholds applied live', () => {
  it('swaps zones and thresholds; rangeM and topics pending a restart; API zones kept', () => {
    const prev = simConfig(world);
    const engine = new Engine({ cfg: prev, now: () => T0, onWarning: () => {} });
    engine.geofences.set(zoneSchema.parse({ ...FAR, id: 'from-api' }));
    const bsm = (i: number) => encodeFrame(world.bsm(0, T0 + i * 100), 'uper');
    assert.equal(engine.handlePayload(bsm(0), 'uper', 0), null, 'inside the sim zone');

    // The sim zone replaced by one far away: the same vehicle is now outside every geofence.
    const next = simConfig(world, {
      zones: [FAR],
      topics: ['v2x/+/bsm'],
      risk: { rangeM: 300, fcw: { ttcWarnS: 4.5 } },
    });
    let saved = 0;
    const plan = planV2x(next, prev, engine, () => saved++);
    assert.deepEqual([...plan.restart].sort(), ['risk.rangeM', 'topics']);
    assert.equal(engine.cfg.risk.fcw.ttcWarnS, prev.risk.fcw.ttcWarnS, 'nothing changes before apply');
    void plan.apply();
    assert.equal(saved, 1);
    assert.equal(engine.cfg.risk.fcw.ttcWarnS, 4.5);
    assert.equal(engine.cfg.risk.rangeM, prev.risk.rangeM, 'rangeM waits for a restart');
    assert.deepEqual(engine.cfg.topics, prev.topics);
    assert.deepEqual(
      engine.geofences
        .list()
        .map((z) => z.id)
        .sort(),
      ['far', 'from-api'],
    );
    assert.equal(engine.handlePayload(bsm(1), 'uper', 0), 'outside');

    // And back: the sim zone returns, far goes, from-api stays.
    void planV2x(prev, engine.cfg, engine, () => saved++).apply();
    assert.deepEqual(
      engine.geofences
        .list()
        .map((z) => z.id)
        .sort(),
      ['from-api', 'sim'],
    );
    assert.equal(engine.handlePayload(bsm(2), 'uper', 0), null);
  });
});
