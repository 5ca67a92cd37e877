import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Engine } from '../../src/v2x/engine.js';
import { encodeFrame } from '../../src/v2x/frames.js';
import { replay, simConfig } from '../../src/v2x/sim/replay.js';
import { loadScenarios } from '../../src/v2x/sim/scenario.js';
import { replicate } from '../../src/v2x/sim/simulate.js';
import { World } from '../../src/v2x/sim/world.js';
import type { Warning } from '../../src/v2x/warning.js';

const DIR = new URL('../../src/v2x/sim/scenarios/', import.meta.url).pathname;
const scenarios = loadScenarios(DIR);

describe('v2x risk applications on the scripted scenarios', () => {
  for (const s of scenarios) {
    it(`${s.name}: ${s.expect.length ? s.expect.map((e) => e.type).join(', ') : 'silent'}`, () => {
      const r = replay([s], { format: 'uper' });
      assert.equal(r.score.recall, 1, `missed: ${r.score.missed.join('; ')}`);
      assert.equal(r.score.falseWarnings, 0, `unexpected: ${r.score.unexpected.join('; ')}`);
      if (s.expect.length === 0) assert.equal(r.warnings.length, 0);
      for (const w of r.warnings) {
        assert.ok(w.trigger.vehicle.length === 16, 'warning names its triggering message');
        if (w.type === 'FCW' || w.type === 'ICW') assert.ok(typeof w.ttcS === 'number');
        if (w.type === 'ICW') assert.ok(typeof w.timeGapS === 'number');
      }
    });
  }

  it('JSON payloads give the same warnings as UPER', () => {
    const a = replay(scenarios, { format: 'uper', startMs: 1_767_225_600_000 });
    const b = replay(scenarios, { format: 'json', startMs: 1_767_225_600_000 });
    const key = (w: Warning) => `${w.type}|${w.vehicles.join('|')}|${w.severity}|${w.ttcS}`;
    assert.deepEqual(a.warnings.map(key), b.warnings.map(key));
    assert.ok(a.warnings.length > 0);
  });

  it('all scenarios at once with background traffic: recall 100 %, no false warning', () => {
    const r = replay(scenarios, { background: 600 });
    assert.equal(r.score.recall, 1, r.score.missed.join('; '));
    assert.equal(r.score.falseWarnings, 0, r.score.unexpected.join('; '));
    assert.equal(r.engine.vehicles.size, 600 + scenarios.reduce((n, s) => n + s.vehicles.length, 0));
  });

  it('copies of the scenario set side by side (simulate --copies) keep apart: recall 100 %', () => {
    const r = replay(replicate(scenarios, 3));
    assert.equal(r.score.expected, 3 * scenarios.reduce((n, s) => n + s.expect.length, 0));
    assert.equal(r.score.recall, 1, r.score.missed.join('; '));
    assert.equal(r.score.falseWarnings, 0, r.score.unexpected.join('; '));
  });

  it('thresholds are configurable: a lower FCW TTC silences a case the default warns on', () => {
    const fcw = scenarios.filter((s) => s.name === 'fcw-slower-lead');
    const r = replay(fcw, { config: { risk: { fcw: { ttcWarnS: 0.5, ttcCriticalS: 0.2 } } } });
    assert.ok(r.warnings.every((w) => (w.ttcS ?? 0) <= 0.5));
    const def = replay(fcw);
    assert.ok(def.warnings.some((w) => (w.ttcS ?? 0) > 2));
  });
});

describe('v2x intake drops', () => {
  const world = new World({ scenarios: scenarios.slice(0, 1), background: 0 });
  const t0 = 1_767_225_600_000;
  const mk = () => {
    let now = t0;
    const warnings: Warning[] = [];
    const e = new Engine({
      cfg: simConfig(world, { maxVehicles: 1 }),
      now: () => now,
      onWarning: (w) => warnings.push(w.warning),
    });
    return { e, set: (t: number) => (now = t), warnings };
  };

  it('stale by secMark (older than maxAgeMs, either side of a minute boundary), duplicates by id and msgCnt', () => {
    const { e, set } = mk();
    const f = world.bsm(0, t0 - 400);
    assert.equal(e.handlePayload(encodeFrame(f, 'uper'), 'uper', 0), 'stale');
    const fresh = world.bsm(0, t0 - 100);
    assert.equal(e.handlePayload(encodeFrame(fresh, 'uper'), 'uper', 0), null);
    assert.equal(e.handlePayload(encodeFrame(fresh, 'uper'), 'uper', 0), 'duplicate');
    set(t0 + 59_950);
    // secMark 59 900 against a clock at 59 950 within the minute: 50 ms old, fine.
    const late = world.bsm(0, t0 + 59_900);
    assert.equal(e.handlePayload(encodeFrame(late, 'uper'), 'uper', 0), null);
    set(t0 + 60_050);
    // A clock just past the minute and a secMark from just before it: 150 ms old, fine.
    assert.equal(e.handlePayload(encodeFrame(world.bsm(0, t0 + 59_900), 'uper'), 'uper', 0), null);
    assert.equal(e.drops.stale, 1);
    assert.equal(e.drops.duplicate, 1);
  });

  it('outside every geofence, over maxVehicles, undecodable (garbage, truncated, bad JSON, out of range)', () => {
    const { e } = mk();
    const f = world.bsm(0, t0) as { bsmFrame: { pos: { lat: number; long: number } } };
    const outside = structuredClone(f);
    outside.bsmFrame.pos.lat = 100_000_000;
    assert.equal(e.handlePayload(encodeFrame(outside as never, 'json'), 'json', 0), 'outside');
    assert.equal(e.handlePayload(encodeFrame(world.bsm(0, t0), 'json'), 'json', 0), null);
    assert.equal(e.handlePayload(encodeFrame(world.bsm(1, t0), 'json'), 'json', 0), 'capacity');
    const good = encodeFrame(world.bsm(0, t0 + 100), 'uper');
    assert.equal(e.handlePayload(good.subarray(0, 5), 'uper', 0), 'undecodable');
    assert.equal(e.handlePayload(Buffer.from([0xff, 0xff, 0xff]), 'uper', 0), 'undecodable');
    assert.equal(e.handlePayload(Buffer.alloc(0), 'uper', 0), 'undecodable');
    assert.equal(e.handlePayload(Buffer.from('{"bsmFrame":'), 'json', 0), 'undecodable');
    const bad = structuredClone(world.bsm(0, t0)) as { bsmFrame: { speed: number } };
    bad.bsmFrame.speed = 9000;
    assert.equal(e.handlePayload(Buffer.from(JSON.stringify(bad)), 'json', 0), 'undecodable');
    assert.match(e.lastError, /speed/);
    assert.equal(e.drops.undecodable, 5);
    assert.equal(e.drops.outside, 1);
    assert.equal(e.drops.capacity, 1);
  });

  it('zone enter and leave events; silent vehicles expire', () => {
    let now = t0;
    const events: string[] = [];
    const e = new Engine({
      cfg: simConfig(world, { vehicleTtlMs: 1000 }),
      now: () => now,
      onWarning: () => {},
      onZone: (v, z, ev) => events.push(`${ev}:${z}:${v}`),
    });
    e.handlePayload(encodeFrame(world.bsm(0, now), 'uper'), 'uper', 0);
    const id = world.vehicles[0]?.hex;
    assert.deepEqual(events, [`enter:sim:${id}`]);
    now += 2000;
    assert.equal(e.sweep(), 1);
    assert.deepEqual(events, [`enter:sim:${id}`, `leave:sim:${id}`]);
    assert.equal(e.vehicles.size, 0);
  });
});
