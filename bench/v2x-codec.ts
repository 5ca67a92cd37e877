import { decodeUper, encodeUper, type MessageFrame } from '../src/v2x/codec/index.js';
import { prng, randomMessage } from '../test/v2x/codec/helpers/random.js';

/**
 * CSAE 53 UPER codec speed on one core (this process): decode and encode messages/s for a typical
 * BSM (position/motion confidence, brakes, a 5-point path history), a minimal BSM, a SPAT (one
 * intersection, 4 phases of 3 states with timing) and a MAP (random, a few nodes/links/lanes). The
 * baseline in the same run is JSON.parse / JSON.stringify of the same messages in the codec's JSON
 * form; ratios above 1 mean UPER is faster than JSON. The engine needs BSM decode >= 400,000/s.
 */

function opsPerSec(ms: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < 20_000; i++) fn(i); // warm the JIT
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let k = 0; k < 1000; k++) fn(n++);
    t = performance.now();
  }
  return Math.round((n * 1000) / (t - t0));
}

function bsm(rnd: () => number, typical: boolean): MessageFrame {
  const int = (lb: number, ub: number) => lb + Math.floor(rnd() * (ub - lb + 1));
  const base = {
    msgCnt: int(0, 127),
    id: Array.from({ length: 8 }, () => int(0, 255).toString(16).padStart(2, '0')).join(''),
    secMark: int(0, 59999),
    pos: { lat: int(390000000, 400000000), long: int(1160000000, 1170000000), elevation: int(0, 500) },
    transmission: 'forwardGears' as const,
    speed: int(0, 2000),
    heading: int(0, 28799),
    accelSet: { long: int(-200, 200), lat: int(-100, 100), vert: 0, yaw: int(-1000, 1000) },
    brakes: {},
    size: { width: 180, length: 480, height: 30 },
    vehicleClass: { classification: 10 },
  };
  if (!typical) return { bsmFrame: base };
  return {
    bsmFrame: {
      ...base,
      timeConfidence: 'time-000-010',
      posAccuracy: { semiMajor: int(0, 50), semiMinor: int(0, 50), orientation: int(0, 65534) },
      posConfidence: { pos: 'a1m', elevation: 'elev-002-00' },
      angle: int(-30, 30),
      motionCfd: { speedCfd: 'prec1ms', headingCfd: 'prec01deg', steerCfd: 'prec2deg' },
      brakes: {
        brakePadel: 'off',
        wheelBrakes: '00000',
        traction: 'on',
        abs: 'on',
        scs: 'on',
        brakeBoost: 'off',
        auxBrakes: 'off',
      },
      vehicleClass: { classification: 10, fuelType: 1 },
      safetyExt: {
        events: '0000000000000',
        pathHistory: {
          crumbData: Array.from({ length: 5 }, (_, i) => ({
            llvOffset: { offsetLL: { 'position-LL3': { lon: int(-3000, 3000), lat: int(-3000, 3000) } } },
            timeOffset: (i + 1) * 50,
          })),
        },
        pathPrediction: { radiusOfCurve: 32767, confidence: 180 },
        lights: '000000001',
      },
    },
  };
}

function spat(rnd: () => number): MessageFrame {
  const int = (lb: number, ub: number) => lb + Math.floor(rnd() * (ub - lb + 1));
  const lights = ['red', 'permissive-green', 'yellow'] as const;
  return {
    spatFrame: {
      msgCnt: int(0, 127),
      timeStamp: int(0, 59999),
      intersections: [
        {
          intersectionId: { region: 1, id: int(1, 1000) },
          status: '0000000000100000',
          phases: Array.from({ length: 4 }, (_, p) => ({
            id: p + 1,
            phaseStates: lights.map((light) => ({
              light,
              timing: { counting: { startTime: 0, likelyEndTime: int(0, 900), nextDuration: int(100, 900) } },
            })),
          })),
        },
      ],
    },
  };
}

function measure(msgs: MessageFrame[], ms: number) {
  const upers = msgs.map((m) => encodeUper(m));
  const jsons = msgs.map((m) => JSON.stringify(m));
  const k = msgs.length;
  const decode = opsPerSec(ms, (i) => decodeUper(upers[i % k]!));
  const jsonParse = opsPerSec(ms, (i) => JSON.parse(jsons[i % k]!));
  const encode = opsPerSec(ms, (i) => encodeUper(msgs[i % k]!));
  const jsonStringify = opsPerSec(ms, (i) => JSON.stringify(msgs[i % k]!));
  const avg = (xs: { length: number }[]) => Math.round(xs.reduce((s, x) => s + x.length, 0) / xs.length);
  return {
    uperBytes: avg(upers),
    jsonBytes: avg(jsons),
    decodePerSec: decode,
    encodePerSec: encode,
    baselineJsonParsePerSec: jsonParse,
    baselineJsonStringifyPerSec: jsonStringify,
    decodeVsJsonParse: Number((decode / jsonParse).toFixed(2)),
    encodeVsJsonStringify: Number((encode / jsonStringify).toFixed(2)),
  };
}

export async function v2xCodec() {
  const rnd = prng(53);
  const ms = 1500;
  const map = Array.from({ length: 64 }, () =>
    randomMessage(rnd, 'mapFrame', { mode: 'random', optional: 0.5, printable: true }),
  );
  const bsmTypical = measure(
    Array.from({ length: 256 }, () => bsm(rnd, true)),
    ms,
  );
  return {
    bsmTypical: { ...bsmTypical, meetsEngineTarget400k: bsmTypical.decodePerSec >= 400_000 },
    bsmMinimal: measure(
      Array.from({ length: 256 }, () => bsm(rnd, false)),
      ms,
    ),
    spat: measure(
      Array.from({ length: 64 }, () => spat(rnd)),
      ms,
    ),
    map: measure(map, ms),
  };
}

// `node --import tsx bench/v2x-codec.ts` runs it alone (bench/run.ts registers it as v2x-codec).
if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await v2xCodec(), null, 2));
