import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RiskConfig, v2xSchema } from '../../src/v2x/config.js';
import type { MapData, SPAT } from '../../src/v2x/frames.js';
import { Enu } from '../../src/v2x/geo.js';
import { evaluatePair, type Finding } from '../../src/v2x/risk.js';
import { type SignalFinding, Signals } from '../../src/v2x/signals.js';
import { newVehicle, type Vehicle } from '../../src/v2x/state.js';

/**
 * Each configurable ICW, EBW, RLVW and GLOSA threshold (docs/v2x.md, "Risk applications"), set just
 * on either side of a geometry whose value is known: the warning appears on one side only. The
 * margins (±0.1 of a unit) are far above the rounding of positions (MAP offsets are 1e-7 degree,
 * about 1 cm), so each pair of cases differs by the threshold alone.
 */

const T0 = 1_767_225_600_000;
const risk = (r: Record<string, unknown>): RiskConfig => v2xSchema.parse({ risk: r }).risk;

/** A vehicle in local metres (x east, y north), compass heading, speed in m/s, 4.5 m long. */
function car(id: string, x: number, y: number, headingDeg: number, speed: number, accel = 0): Vehicle {
  const v = newVehicle(id, 0);
  const rad = (headingDeg * Math.PI) / 180;
  Object.assign(v, { t: T0, x, y, headingDeg, speed, accel, hx: Math.sin(rad), hy: Math.cos(rad) });
  return v;
}

function pair(s: Vehicle, o: Vehicle, cfg: RiskConfig): Finding[] {
  const out: Finding[] = [];
  evaluatePair(s, o, cfg, out);
  return out;
}
const types = (f: { type: string }[]) => f.map((x) => x.type);

describe('v2x ICW thresholds (risk.icw)', () => {
  // S northbound to the origin, O eastbound to it; both at 10 m/s.
  const cross = (sDist: number, oDist: number) => [car('S', 0, -sDist, 0, 10), car('O', -oDist, 0, 90, 10)];

  it('timeGapS: arrivals 1.5 s apart warn under a 1.6 s gap, not under 1.4 s', () => {
    const [s, o] = cross(30, 45) as [Vehicle, Vehicle];
    const on = pair(s, o, risk({ icw: { timeGapS: 1.6 } }));
    assert.deepEqual(types(on), ['ICW']);
    assert.equal(on[0]?.timeGapS, 1.5);
    assert.equal(on[0]?.actor.id, 'O', 'the later vehicle must act');
    assert.deepEqual(types(pair(s, o, risk({ icw: { timeGapS: 1.4 } }))), []);
  });

  it('horizonS: both 5 s from the crossing warn under a 5.1 s horizon, not under 4.9 s', () => {
    const [s, o] = cross(50, 50) as [Vehicle, Vehicle];
    assert.deepEqual(types(pair(s, o, risk({ icw: { horizonS: 5.1 } }))), ['ICW']);
    assert.deepEqual(types(pair(s, o, risk({ icw: { horizonS: 4.9 } }))), []);
  });

  it('criticalS: 3 s from the crossing is critical under 3.1 s, a warning under 2.9 s', () => {
    const [s, o] = cross(30, 30) as [Vehicle, Vehicle];
    assert.equal(pair(s, o, risk({ icw: { criticalS: 3.1 } }))[0]?.severity, 'critical');
    assert.equal(pair(s, o, risk({ icw: { criticalS: 2.9 } }))[0]?.severity, 'warning');
  });

  it('minCrossingDeg: headings 60° (and 120°) apart cross under 55°, not under 65°', () => {
    // O heads 60° (then 120°) and reaches the origin in 5 s, as S does.
    for (const h of [60, 120]) {
      const r = (h * Math.PI) / 180;
      const s = car('S', 0, -50, 0, 10);
      const o = car('O', -50 * Math.sin(r), -50 * Math.cos(r), h, 10);
      assert.deepEqual(types(pair(s, o, risk({ icw: { minCrossingDeg: 55 } }))), ['ICW'], `${h}°`);
      assert.deepEqual(types(pair(s, o, risk({ icw: { minCrossingDeg: 65 } }))), [], `${h}°`);
    }
  });
});

describe('v2x EBW thresholds (risk.ebw)', () => {
  // Both northbound at 15 m/s (not closing: no FCW); the lead 50 m ahead bumper to bumper.
  const follow = () => car('F', 0, 0, 0, 15);
  const lead = (accel: number, gap = 50) => car('L', 0, gap + 4.5, 0, 15, accel);

  it('decelMs2: a lead braking at 4 m/s² warns under 3.9, not under 4.1', () => {
    const on = pair(follow(), lead(-4), risk({ ebw: { decelMs2: 3.9 } }));
    assert.deepEqual(types(on), ['EBW']);
    assert.equal(on[0]?.actor.id, 'F');
    assert.equal(on[0]?.distanceM, 50);
    assert.deepEqual(types(pair(follow(), lead(-4), risk({ ebw: { decelMs2: 4.1 } }))), []);
  });

  it('rangeM: a braking lead 50 m ahead warns within 51 m, not within 49 m', () => {
    assert.deepEqual(types(pair(follow(), lead(-5), risk({ ebw: { rangeM: 51 } }))), ['EBW']);
    assert.deepEqual(types(pair(follow(), lead(-5), risk({ ebw: { rangeM: 49 } }))), []);
  });

  it('rangeM beyond risk.rangeM: refused at config check (pairs farther apart are never evaluated)', () => {
    // Before the fix ebw.rangeM 300 was accepted and had no effect past risk.rangeM (150).
    const bad = v2xSchema.safeParse({ risk: { ebw: { rangeM: 300 } } });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /risk\.rangeM/);
    // Raised together, a braking lead 200 m ahead warns.
    const cfg = risk({ rangeM: 400, ebw: { rangeM: 300 } });
    assert.deepEqual(types(pair(follow(), lead(-5, 200), cfg)), ['EBW']);
  });
});

describe('v2x RLVW and GLOSA thresholds (risk.rlvw, risk.glosa)', () => {
  const enu = new Enu(31.2, 121.4);
  /** One approach, northbound, its stop line at the origin (intersection 1, phase 2). */
  function signals(light: 'red' | 'yellow' | 'protected-green', remainingS: number): Signals {
    const lat0 = Math.round(enu.lat(0) * 1e7);
    const lon0 = Math.round(enu.lon(0) * 1e7);
    const off = (x: number, y: number) => ({
      posOffset: {
        offsetLL: {
          'position-LL6': {
            lon: Math.round(enu.lon(x) * 1e7) - lon0,
            lat: Math.round(enu.lat(y) * 1e7) - lat0,
          },
        },
      },
    });
    const map = {
      msgCnt: 0,
      nodes: [
        {
          id: { id: 1 },
          refPos: { lat: lat0, long: lon0 },
          inLinks: [
            {
              upstreamNodeId: { id: 1001 },
              points: [off(0, -500), off(0, 0)],
              movements: [{ remoteIntersection: { id: 2001 }, phaseId: 2 }],
              lanes: [{ laneID: 1 }],
            },
          ],
        },
      ],
    } as unknown as MapData;
    const spat = {
      msgCnt: 0,
      timeStamp: 0,
      intersections: [
        {
          intersectionId: { id: 1 },
          status: '0000000000000000',
          phases: [
            {
              id: 2,
              phaseStates: [
                { light, timing: { counting: { startTime: 0, likelyEndTime: Math.round(remainingS * 10) } } },
              ],
            },
          ],
        },
      ],
    } as unknown as SPAT;
    const s = new Signals();
    s.applyMap(map, enu);
    s.applySpat(spat, T0);
    assert.equal(s.approaches, 1);
    return s;
  }
  function evaluate(s: Signals, v: Vehicle, cfg: RiskConfig): SignalFinding[] {
    const out: SignalFinding[] = [];
    s.evaluate(v, cfg, out);
    return out;
  }

  // 18 m/s, 40 m before a red with 20 s left: stopping needs 18² / (2·40) = 4.05 m/s².
  it('rlvw.comfortDecelMs2: needing 4.05 m/s² warns under 4.0, not under 4.1', () => {
    const red = signals('red', 20);
    const on = evaluate(red, car('A', 0, -40, 0, 18), risk({ rlvw: { comfortDecelMs2: 4.0 } }));
    assert.deepEqual(types(on), ['RLVW']);
    assert.equal(on[0]?.severity, 'critical');
    assert.deepEqual(
      types(evaluate(red, car('A', 0, -40, 0, 18), risk({ rlvw: { comfortDecelMs2: 4.1 } }))),
      [],
    );
  });

  it('rlvw.rangeM: 40 m before the line warns within 40.5 m, not within 39.5 m', () => {
    const red = signals('red', 20);
    assert.deepEqual(types(evaluate(red, car('A', 0, -40, 0, 18), risk({ rlvw: { rangeM: 40.5 } }))), [
      'RLVW',
    ]);
    assert.deepEqual(types(evaluate(red, car('A', 0, -40, 0, 18), risk({ rlvw: { rangeM: 39.5 } }))), []);
  });

  it('rlvw.laneHalfWidthM: 2 m off the centreline warns within 2.1 m, not within 1.9 m', () => {
    const red = signals('red', 20);
    const a = () => car('A', 2, -40, 0, 18);
    assert.deepEqual(types(evaluate(red, a(), risk({ rlvw: { laneHalfWidthM: 2.1 } }))), ['RLVW']);
    assert.deepEqual(types(evaluate(red, a(), risk({ rlvw: { laneHalfWidthM: 1.9 } }))), []);
  });

  // 14 m/s, 150 m before a red with 15 s left: it can stop (0.65 m/s²); arriving at 10 m/s meets green.
  it('glosa.minSpeedMs on red: advising 10 m/s happens under 9.9, not under 10.1', () => {
    const red = signals('red', 15);
    const on = evaluate(red, car('A', 0, -150, 0, 14), risk({ glosa: { minSpeedMs: 9.9 } }));
    assert.deepEqual(types(on), ['GLOSA']);
    assert.equal(on[0]?.advisedSpeedMs, 10);
    assert.deepEqual(
      types(evaluate(red, car('A', 0, -150, 0, 14), risk({ glosa: { minSpeedMs: 10.1 } }))),
      [],
    );
  });

  it('glosa.minChangeMs on red: a 4 m/s change is advised under 3.9, not under 4.1', () => {
    const red = signals('red', 15);
    assert.deepEqual(types(evaluate(red, car('A', 0, -150, 0, 14), risk({ glosa: { minChangeMs: 3.9 } }))), [
      'GLOSA',
    ]);
    assert.deepEqual(
      types(evaluate(red, car('A', 0, -150, 0, 14), risk({ glosa: { minChangeMs: 4.1 } }))),
      [],
    );
  });

  // 10 m/s, 150 m before a green ending in 10 s (arrival in 15 s): 15 m/s would make it (no MAP limit).
  it('glosa.minChangeMs on green: a 5 m/s change is advised under 4.9, not under 5.1', () => {
    const green = signals('protected-green', 10);
    const on = evaluate(green, car('A', 0, -150, 0, 10), risk({ glosa: { minChangeMs: 4.9 } }));
    assert.deepEqual(types(on), ['GLOSA']);
    assert.equal(on[0]?.advisedSpeedMs, 15);
    assert.deepEqual(
      types(evaluate(green, car('A', 0, -150, 0, 10), risk({ glosa: { minChangeMs: 5.1 } }))),
      [],
    );
  });

  // 1 m/s, 30 m before a green ending in 10 s: 3 m/s would make it. Before the fix the green branch
  // ignored minSpeedMs and advised 3 m/s although the config says "advise no speed below this".
  it('glosa.minSpeedMs on green: advising 3 m/s happens under 2.9, not under 3.1', () => {
    const green = signals('protected-green', 10);
    const on = evaluate(green, car('A', 0, -30, 0, 1), risk({ glosa: { minSpeedMs: 2.9 } }));
    assert.deepEqual(types(on), ['GLOSA']);
    assert.equal(on[0]?.advisedSpeedMs, 3);
    assert.deepEqual(
      types(evaluate(green, car('A', 0, -30, 0, 1), risk({ glosa: { minSpeedMs: 3.1 } }))),
      [],
    );
  });
});
