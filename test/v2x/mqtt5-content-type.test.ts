import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeFrame } from '../../src/v2x/frames.js';
import { loadScenarios } from '../../src/v2x/sim/scenario.js';
import { World } from '../../src/v2x/sim/world.js';
import { until } from '../edge/setup.js';
import { startV2x, type V2xApp } from './setup.js';

const DIR = new URL('../../src/v2x/sim/scenarios/', import.meta.url).pathname;

/** A counter's value from /metrics (0 when absent). */
async function counter(k: V2xApp, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${k.base}/metrics`)).text();
  const m = text.match(new RegExp(`^${name}\\{${label}[^}]*\\} (\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}

// Issue 15: V2X picks the payload format by the MQTT 5 Content Type before the topic suffix or the
// first byte; with MQTT 5 on the embedded broker that property now reaches it from real clients.
describe('v2x: the MQTT 5 Content Type decides the payload format', () => {
  let k: V2xApp;
  before(async () => {
    k = await startV2x();
  });
  after(() => k.stop());

  it('JSON labelled application/json is taken; the same JSON labelled UPER, or UPER labelled JSON, is undecodable', async () => {
    const world = new World({
      scenarios: loadScenarios(`${DIR}fcw-stopped-lead.json`),
      background: 0,
      runId: 9,
    });
    world.step(0.1, 0.1);
    const c = await k.client({ protocolVersion: 5 });
    const bsm0 = await counter(k, 'kapok_v2x_messages_total', 'type="bsm"');
    const bad0 = await counter(k, 'kapok_v2x_dropped_total', 'reason="undecodable"');
    const json = encodeFrame(world.bsm(0, Date.now()), 'json');
    await c.publishAsync('v2x/rsu1/bsm', json, { qos: 1, properties: { contentType: 'application/json' } });
    await until(
      async () => (await counter(k, 'kapok_v2x_messages_total', 'type="bsm"')) === bsm0 + 1,
      5000,
      'JSON BSM taken in',
    );
    const json2 = encodeFrame(world.bsm(1, Date.now()), 'json');
    await c.publishAsync('v2x/rsu1/bsm', json2, { qos: 1, properties: { contentType: 'application/per' } });
    const uper = encodeFrame(world.bsm(1, Date.now() + 1), 'uper');
    await c.publishAsync('v2x/rsu1/bsm', uper, { qos: 1, properties: { contentType: 'application/json' } });
    await until(
      async () => (await counter(k, 'kapok_v2x_dropped_total', 'reason="undecodable"')) === bad0 + 2,
      5000,
      'both mislabelled payloads undecodable',
    );
    assert.equal(await counter(k, 'kapok_v2x_messages_total', 'type="bsm"'), bsm0 + 1);
    c.end(true);
  });
});
