import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import WebSocket from 'ws';
import { encodeFrame } from '../../src/v2x/frames.js';
import { loadScenarios } from '../../src/v2x/sim/scenario.js';
import { World } from '../../src/v2x/sim/world.js';
import { until } from '../edge/setup.js';
import { kapok } from '../helpers/cli.js';
import { startV2x, type V2xApp } from './setup.js';

const DIR = new URL('../../src/v2x/sim/scenarios/', import.meta.url).pathname;
const byName = (n: string) => loadScenarios(`${DIR}${n}.json`);

/** Frames of a world stepped `seconds` ahead, all stamped now (positions matter, not times). */
function framesAfter(world: World, seconds: number) {
  for (let t = 0.1; t <= seconds + 1e-9; t += 0.1) world.step(t, 0.1);
  const now = Date.now();
  return world.vehicles.map((_, i) => world.bsm(i, now));
}

describe('v2x API and MQTT intake', () => {
  let k: V2xApp;
  before(async () => {
    k = await startV2x({ maxBatch: 20, strategy: { ttlMs: 5000, retryMs: 100 } });
  });
  after(async () => k.stop());

  it('POST /api/v2x/messages takes a batch, answers accepted, drops and the warnings raised', async () => {
    const world = new World({ scenarios: byName('fcw-slower-lead'), background: 0, runId: 1 });
    const frames = framesAfter(world, 1);
    const uper = framesAfter(world, 0.1).map((f) => encodeFrame(f, 'uper').toString('base64'));
    const r = await k.call('POST', '/api/v2x/messages', { messages: frames, uper });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.accepted, 4);
    assert.equal(r.body.warnings[0]?.type, 'FCW');
    assert.equal(r.body.warnings[0]?.vehicles[0], world.ids.get('fcw-slower-lead:A'));
    const again = await k.call('POST', '/api/v2x/messages', { messages: frames });
    assert.deepEqual(again.body.dropped, { duplicate: 2 });
    const v = await k.call('GET', '/api/v2x/vehicles?path=1');
    assert.equal(v.status, 200);
    assert.ok(v.body.vehicles.some((x: { id: string }) => x.id === world.ids.get('fcw-slower-lead:B')));
    assert.equal(v.body.vehicles[0].path.length, 2);
    const w = await k.call('GET', `/api/v2x/warnings?since=${Date.now() - 60_000}`);
    assert.ok(w.body.warnings.length >= 1);
    const none = await k.call(
      'GET',
      `/api/v2x/warnings?since=${new Date(Date.now() + 60_000).toISOString()}`,
    );
    assert.deepEqual(none.body.warnings, []);
  });

  it('refuses malformed, oversized and hostile batches with a clear error; keeps what was accepted', async () => {
    const bad = async (body: unknown, re: RegExp, status = 400) => {
      const r = await k.call('POST', '/api/v2x/messages', body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.match(JSON.stringify(r.body), re);
    };
    await bad([1, 2], /body must be an object/);
    await bad({ messages: [], extra: 1 }, /unknown key extra/);
    await bad({ messages: 'x' }, /must be arrays/);
    await bad({ messages: Array.from({ length: 21 }, () => ({})) }, /v2x.maxBatch/);
    await bad('{"messages": [', /KAPOK_HTTP_BAD_REQUEST/);
    await bad({ messages: ['x'.repeat(2_000_000)] }, /KAPOK_HTTP_BODY_TOO_LARGE/, 413);
    const r = await k.call('POST', '/api/v2x/messages', {
      messages: [{ bsmFrame: { msgCnt: 500 } }, { nope: {} }, null, { bsmFrame: { id: 'zz'.repeat(5000) } }],
      uper: ['!!!', 'AAAA', ''],
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.accepted, 0);
    assert.equal(r.body.dropped.undecodable, 7);
    assert.equal(r.body.errors.length, 7);
    assert.match(r.body.errors[0].error, /msgCnt|bsmFrame/);
    // __proto__ and constructor.prototype keys are refused by the JSON parser itself.
    for (const body of [
      '{"messages":[{"__proto__":{"polluted":1}}]}',
      '{"messages":[{"constructor":{"prototype":{"polluted":1}}}]}',
    ]) {
      const proto = await k.call('POST', '/api/v2x/messages', body);
      assert.equal(proto.status, 400);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const bad2 = await k.call('GET', '/api/v2x/warnings?since=yesterday');
    assert.equal(bad2.status, 400);
    const bad3 = await k.call('GET', '/api/v2x/vehicles?limit=-1');
    assert.equal(bad3.status, 400);
  });

  it('zones: PUT creates (201) and replaces (200), bad polygons are refused, DELETE removes', async () => {
    const poly = {
      type: 'Polygon',
      coordinates: [
        [
          [113.3, 23.1],
          [113.4, 23.1],
          [113.4, 23.2],
          [113.3, 23.2],
          [113.3, 23.1],
        ],
      ],
    };
    assert.equal((await k.call('PUT', '/api/v2x/zones/z1', poly)).status, 201);
    assert.equal((await k.call('PUT', '/api/v2x/zones/z1', { type: 'Feature', geometry: poly })).status, 200);
    const open = {
      type: 'Polygon',
      coordinates: [
        [
          [1, 1],
          [2, 1],
          [2, 2],
          [1, 2.5],
        ],
      ],
    };
    const r = await k.call('PUT', '/api/v2x/zones/z2', open);
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /not closed/);
    const bowtie = {
      type: 'Polygon',
      coordinates: [
        [
          [113, 23],
          [113.1, 23.1],
          [113.1, 23],
          [113, 23.1],
          [113, 23],
        ],
      ],
    };
    const crossed = await k.call('PUT', '/api/v2x/zones/z4', bowtie);
    assert.equal(crossed.status, 400);
    assert.match(
      crossed.body.error.message,
      /zone z4: geometry\.coordinates: ring 0 edge 0 \(positions 0→1\) crosses ring 0 edge 2 \(positions 2→3\)/,
    );
    const r2 = await k.call('PUT', '/api/v2x/zones/z3', { type: 'Polygon', coordinates: [[[500, 1]]] });
    assert.equal(r2.status, 400);
    assert.equal((await k.call('PUT', '/api/v2x/zones/bad%20id', poly)).status, 400);
    assert.equal((await k.call('GET', '/api/v2x/zones')).body.zones.length, 1);
    assert.equal((await k.call('DELETE', '/api/v2x/zones/z1')).status, 204);
    assert.equal((await k.call('DELETE', '/api/v2x/zones/z1')).status, 404);
  });

  // Issue 13: a PUBACK settles a strategy only from the vehicle's own device session (test/v2x/
  // device-acl.test.ts); this anonymous OBU's PUBACK is ignored and counted, the strategy retried.
  it('MQTT: UPER BSMs → FCW → strategy on v2x/{id}/strategy; an anonymous PUBACK does not settle it; live view on /ws/v2x', async () => {
    const world = new World({ scenarios: byName('fcw-stopped-lead'), background: 0, runId: 2 });
    const a = world.ids.get('fcw-stopped-lead:A') as string;
    const obu = await k.client();
    const got: Array<Record<string, unknown>> = [];
    obu.on('message', (_t, p) => got.push(JSON.parse(p.toString())));
    await obu.subscribeAsync(`v2x/${a}/strategy`, { qos: 1 });
    const ws = new WebSocket(`ws://127.0.0.1:${k.app.port}/ws/v2x`);
    const frames: Array<{ type: string }> = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    await new Promise((r) => ws.once('open', r));
    const rsu = await k.client();
    let t = 0;
    const stats0 = (await k.call('GET', '/api/v2x/stats')).body;
    await until(
      async () => {
        t += 0.1;
        world.step(t, 0.1);
        for (let i = 0; i < world.vehicles.length; i++)
          await rsu.publishAsync('v2x/rsu1/bsm', encodeFrame(world.bsm(i, Date.now()), 'uper'));
        return got.length > 0;
      },
      10_000,
      'strategy at the OBU',
    );
    const s = got[0] as { vehicleId: string; warningType: string; action: string; expiresAt: number };
    assert.equal(s.vehicleId, a);
    assert.equal(s.warningType, 'FCW');
    assert.ok(s.expiresAt > Date.now());
    await until(() => got.length >= 2, 5000, 'the strategy published again: the PUBACK did not count');
    const stats = (await k.call('GET', '/api/v2x/stats')).body;
    assert.equal(stats.strategies.acked, stats0.strategies.acked);
    assert.ok(stats.messages.bsm >= 2);
    assert.ok(stats.decisionMs.p99 !== null);
    await until(() => frames.some((f) => f.type === 'warning'), 5000, 'warning on /ws/v2x');
    // V2X traffic does not enter the telemetry intake.
    const metrics = await (await request(`${k.base}/metrics`)).body.text();
    assert.match(metrics, /kapok_edge_received_total\{[^}]*\} 0\b/);
    assert.match(metrics, /kapok_v2x_messages_total\{[^}]*type="bsm"[^}]*\} [1-9]/);
    assert.match(metrics, /kapok_v2x_decision_seconds_count/);
    assert.match(metrics, /kapok_v2x_acks_ignored_total\{[^}]*\} [1-9]/);
    ws.close();
    await obu.endAsync();
    await rsu.endAsync();
  });

  // Issue 13: only the vehicle's own device may ack (test/v2x/device-acl.test.ts has the settling case).
  it('an application ack on v2x/{id}/strategy/ack from an anonymous client does not settle the strategy', async () => {
    const world = new World({ scenarios: byName('rlvw-red'), background: 0, runId: 3 });
    const a = world.ids.get('rlvw-red:A') as string;
    const obu = await k.client();
    const got: Array<{ id: string }> = [];
    obu.on('message', (_t, p) => got.push(JSON.parse(p.toString())));
    await obu.subscribeAsync(`v2x/${a}/strategy`, { qos: 0 });
    const rsu = await k.client();
    await rsu.publishAsync('v2x/rsu1/map', encodeFrame(world.map() as never, 'uper'));
    await rsu.publishAsync('v2x/rsu1/spat', encodeFrame(world.spat(Date.now(), 0) as never, 'uper'));
    await rsu.publishAsync('v2x/rsu1/bsm', encodeFrame(world.bsm(0, Date.now()), 'json'));
    await until(() => got.length >= 2, 5000, 'strategy published again without a PUBACK');
    const id = got[0]?.id as string;
    assert.ok(got.every((g) => g.id === id));
    const pending = (await k.call('GET', '/api/v2x/strategies')).body.strategies;
    assert.ok(pending.some((p: { id: string }) => p.id === id));
    const before = got.length;
    await obu.publishAsync(`v2x/${a}/strategy/ack`, id, { qos: 1 });
    await until(() => got.length > before + 1, 5000, 'still published after the ack');
    const p = (await k.call('GET', '/api/v2x/strategies')).body.strategies;
    assert.ok(
      p.some((x: { id: string }) => x.id === id),
      'still pending',
    );
    await obu.endAsync();
    await rsu.endAsync();
  });
});

describe('v2x config', () => {
  it('v2x.enabled without edge.enabled is a configuration error (exit 2) naming both keys', async () => {
    const r = await kapok(['config', 'check'], { KAPOK_V2X__ENABLED: 'true', KAPOK_EDGE__ENABLED: 'false' });
    assert.equal(r.code, 2, r.stderr + r.stdout);
    assert.match(r.stderr + r.stdout, /v2x\.enabled/);
    assert.match(r.stderr + r.stdout, /edge\.enabled/);
  });
});
