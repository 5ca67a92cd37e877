import type { BasicSafetyMessage, MapData, MessageFrame, SPAT } from '../frames.js';
import { Enu } from '../geo.js';
import type { Scenario } from './scenario.js';

/** Default origin of simulated traffic (Guangzhou, Tianhe). */
export const SIM_ORIGIN = { lat: 23.1291, lon: 113.3245 };
/** Scenario k runs around (k × SCENARIO_SPACING_M, 0); background traffic south of y = -2000 m. */
export const SCENARIO_SPACING_M = 1000;
const BG_Y0 = -2500;
const BG_ROAD_SPACING_M = 200;
const BG_SPACING_M = 30;
const BG_ROAD_LENGTH_M = 3000;
const BG_SPEED_MS = 12;

interface SimVehicle {
  hex: string;
  /** scenario:vehicle, or bg:<n>. */
  name: string;
  x: number;
  y: number;
  headingDeg: number;
  speed: number;
  accel: number;
  hardBraking: boolean;
  lengthM: number;
  widthM: number;
  events: Array<{ atS: number; accelMs2: number; hardBraking: boolean }>;
  msgCnt: number;
  /** Background: wraps along its road. */
  wrap: boolean;
}

interface SimSignal {
  intersection: number;
  x: number;
  y: number;
  ux: number;
  uy: number;
  phase: number;
  light: string;
  /** Absolute sim time (s) the current light ends. */
  endsAtS: number;
}

export interface WorldOptions {
  scenarios: Scenario[];
  /** Background vehicles on east-west roads (no conflicts among them by construction). */
  background: number;
  origin?: { lat: number; lon: number };
  /** Distinguishes vehicle ids of repeated runs (the top bytes of the BSM id). */
  runId?: number;
  /** Shifts scenario k's anchor north by this many metres (runs side by side). */
  offsetNorthM?: number;
}

/**
 * A deterministic traffic world: scenario vehicles (piecewise-constant acceleration) and background
 * vehicles on a road grid, stepped in fixed increments, producing BSM, SPAT and MAP frames.
 */
export class World {
  readonly enu: Enu;
  readonly vehicles: SimVehicle[] = [];
  readonly signals: SimSignal[] = [];
  /** Scenario vehicle name → BSM id (hex). */
  readonly ids = new Map<string, string>();
  readonly byHex = new Map<string, string>();
  readonly durationS: number;
  readonly scenarioCount: number;
  readonly roads: number;

  constructor(o: WorldOptions) {
    const origin = o.origin ?? SIM_ORIGIN;
    this.enu = new Enu(origin.lat, origin.lon);
    const run = o.runId ?? 0;
    o.scenarios.forEach((s, k) => {
      const ax = k * SCENARIO_SPACING_M;
      const ay = o.offsetNorthM ?? 0;
      s.vehicles.forEach((v, j) => {
        const hex = idHex(run, 1 + k, j);
        const name = `${s.name}:${v.id}`;
        this.ids.set(name, hex);
        this.byHex.set(hex, name);
        this.vehicles.push({
          hex,
          name,
          x: ax + v.x,
          y: ay + v.y,
          headingDeg: v.headingDeg,
          speed: v.speedMs,
          accel: 0,
          hardBraking: false,
          lengthM: v.lengthM,
          widthM: v.widthM,
          events: [...v.events].sort((a, b) => a.atS - b.atS),
          msgCnt: 0,
          wrap: false,
        });
      });
      for (const sg of s.signals) {
        const h = (sg.approachHeadingDeg * Math.PI) / 180;
        this.signals.push({
          intersection: sg.intersection,
          x: ax + sg.x,
          y: ay + sg.y,
          ux: Math.sin(h),
          uy: Math.cos(h),
          phase: sg.phase,
          light: sg.light,
          endsAtS: sg.remainingS,
        });
      }
    });
    const perRoad = 2 * Math.floor(BG_ROAD_LENGTH_M / BG_SPACING_M);
    for (let n = 0; n < o.background; n++) {
      const road = Math.floor(n / perRoad);
      const i = n % perRoad;
      const east = i % 2 === 0;
      const slot = Math.floor(i / 2);
      const hex = idHex(run, 0, n);
      this.byHex.set(hex, `bg:${n}`);
      this.vehicles.push({
        hex,
        name: `bg:${n}`,
        x: slot * BG_SPACING_M + (east ? 0 : BG_SPACING_M / 2),
        y: BG_Y0 - road * BG_ROAD_SPACING_M + (east ? -1.75 : 1.75),
        headingDeg: east ? 90 : 270,
        speed: BG_SPEED_MS,
        accel: 0,
        hardBraking: false,
        lengthM: 4.5,
        widthM: 1.8,
        events: [],
        msgCnt: 0,
        wrap: true,
      });
    }
    this.durationS = Math.max(0, ...o.scenarios.map((s) => s.durationS));
    this.scenarioCount = o.scenarios.length;
    this.roads = Math.ceil(o.background / perRoad);
  }

  /** A polygon (lon/lat ring) covering everything this world can place vehicles in. */
  zone(): { type: 'Polygon'; coordinates: [number, number][][] } {
    const e = this.enu;
    const x0 = -2000;
    const x1 = Math.max(BG_ROAD_LENGTH_M, this.scenarioCount * SCENARIO_SPACING_M) + 2000;
    const y0 = BG_Y0 - this.roads * BG_ROAD_SPACING_M - 2000;
    const y1 = 2000;
    const ring: [number, number][] = [
      [e.lon(x0), e.lat(y0)],
      [e.lon(x1), e.lat(y0)],
      [e.lon(x1), e.lat(y1)],
      [e.lon(x0), e.lat(y1)],
      [e.lon(x0), e.lat(y0)],
    ];
    return { type: 'Polygon', coordinates: [ring] };
  }

  /** Advances every vehicle by dtS, applying scripted events that fall due by tS. */
  step(tS: number, dtS: number): void {
    for (const v of this.vehicles) {
      while (v.events.length && (v.events[0]?.atS ?? Infinity) <= tS) {
        const ev = v.events.shift() as { accelMs2: number; hardBraking: boolean };
        v.accel = ev.accelMs2;
        v.hardBraking = ev.hardBraking;
      }
      const h = (v.headingDeg * Math.PI) / 180;
      const nv = Math.max(0, v.speed + v.accel * dtS);
      const d = ((v.speed + nv) / 2) * dtS;
      v.speed = nv;
      if (nv === 0) v.accel = 0;
      v.x += Math.sin(h) * d;
      v.y += Math.cos(h) * d;
      if (v.wrap) {
        if (v.x > BG_ROAD_LENGTH_M) v.x -= BG_ROAD_LENGTH_M;
        else if (v.x < 0) v.x += BG_ROAD_LENGTH_M;
      }
    }
    for (const s of this.signals)
      if (tS >= s.endsAtS) {
        const green = s.light === 'red';
        s.light = green ? 'protected-green' : s.light === 'yellow' ? 'red' : 'yellow';
        s.endsAtS = tS + (green ? 30 : s.light === 'red' ? 30 : 3);
      }
  }

  /** The BSM of vehicle i at epoch time `epochMs`. */
  bsm(i: number, epochMs: number): MessageFrame {
    const v = this.vehicles[i] as SimVehicle;
    v.msgCnt = (v.msgCnt + 1) & 127;
    const b: BasicSafetyMessage = {
      msgCnt: v.msgCnt,
      id: v.hex,
      secMark: epochMs % 60_000,
      pos: {
        lat: Math.round(this.enu.lat(v.y) * 1e7),
        long: Math.round(this.enu.lon(v.x) * 1e7),
      },
      transmission: 'forwardGears',
      speed: Math.min(8190, Math.round(v.speed / 0.02)),
      heading: Math.round((((v.headingDeg % 360) + 360) % 360) / 0.0125) % 28800,
      accelSet: { long: Math.max(-2000, Math.min(2000, Math.round(v.accel * 100))), lat: 0, vert: 0, yaw: 0 },
      brakes: { brakePadel: v.accel < 0 ? 'on' : 'off' },
      size: { width: Math.round(v.widthM * 100), length: Math.round(v.lengthM * 100) },
      vehicleClass: { classification: 10 },
      ...(v.hardBraking ? { safetyExt: { events: '0000000100000' } } : {}),
    };
    return { bsmFrame: b };
  }

  spat(epochMs: number, tS: number): MessageFrame | null {
    if (this.signals.length === 0) return null;
    const s: SPAT = {
      msgCnt: Math.floor(tS * 10) & 127,
      timeStamp: epochMs % 60_000,
      intersections: this.signals.map((g) => ({
        intersectionId: { id: g.intersection },
        status: '0000000000000000',
        phases: [
          {
            id: g.phase,
            phaseStates: [
              {
                light: g.light as 'red',
                timing: {
                  counting: {
                    startTime: 0,
                    likelyEndTime: Math.max(0, Math.min(36000, Math.round((g.endsAtS - tS) * 10))),
                  },
                },
              },
            ],
          },
        ],
      })),
    };
    return { spatFrame: s };
  }

  map(): MessageFrame | null {
    if (this.signals.length === 0) return null;
    const e = this.enu;
    const m: MapData = {
      msgCnt: 0,
      nodes: this.signals.map((g) => {
        const lat0 = Math.round(e.lat(g.y) * 1e7);
        const lon0 = Math.round(e.lon(g.x) * 1e7);
        // Approach centreline from 300 m before the stop line to the stop line (offsets from refPos).
        const sx = g.x - g.ux * 300;
        const sy = g.y - g.uy * 300;
        const off = (x: number, y: number) => ({
          posOffset: {
            offsetLL: {
              'position-LL6': {
                lon: Math.round(e.lon(x) * 1e7) - lon0,
                lat: Math.round(e.lat(y) * 1e7) - lat0,
              },
            },
          },
        });
        return {
          id: { id: g.intersection },
          refPos: { lat: lat0, long: lon0 },
          inLinks: [
            {
              upstreamNodeId: { id: (g.intersection + 1000) & 65535 },
              points: [off(sx, sy), off(g.x, g.y)],
              movements: [{ remoteIntersection: { id: (g.intersection + 2000) & 65535 }, phaseId: g.phase }],
              lanes: [{ laneID: 1 }],
            },
          ],
        };
      }),
    };
    return { mapFrame: m };
  }
}

function idHex(run: number, group: number, n: number): string {
  return (
    (run & 0xffff).toString(16).padStart(4, '0') +
    (group & 0xffff).toString(16).padStart(4, '0') +
    (n >>> 0).toString(16).padStart(8, '0')
  );
}
