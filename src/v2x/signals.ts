import type { RiskConfig } from './config.js';
import type { MapData, PositionOffsetLLV, SPAT } from './frames.js';
import type { Enu } from './geo.js';
import { angleDiffDeg } from './geo.js';
import { round } from './risk.js';
import type { Vehicle } from './state.js';
import type { Severity, WarningType } from './warning.js';

/** An inbound approach of an intersection from MAP: its stop point and direction of travel. */
interface Approach {
  intersection: number;
  phase: number;
  stopX: number;
  stopY: number;
  /** Unit direction of travel at the stop line. */
  ux: number;
  uy: number;
  headingDeg: number;
  /** Speed limit (m/s) or NaN. */
  limitMs: number;
}

interface PhaseState {
  light: string;
  /** Seconds left in this light when the SPAT was taken in, or NaN. */
  remainingS: number;
  at: number;
}

export interface SignalFinding {
  type: WarningType;
  severity: Severity;
  intersection: number;
  phase: number;
  distanceM: number;
  ttcS: number | null;
  advisedSpeedMs?: number;
}

const RED = new Set(['red', 'flashing-red']);
const GREEN = new Set(['permissive-green', 'protected-green']);

/**
 * RLVW and GLOSA from MAP approaches and SPAT phase states. MAP point offsets are read relative
 * to the node's refPos (1e-7 degree units); the last point of an inbound link (or of its first
 * lane) is its stop line. The phase of an approach is its first movement's phaseId, else its first
 * lane's first connection's. SPAT timing is read from `counting.likelyEndTime` (0.1 s left).
 */
export class Signals {
  #approaches: Approach[] = [];
  readonly #byIntersection = new Map<number, Approach[]>();
  readonly #phases = new Map<number, Map<number, PhaseState>>();

  get approaches(): number {
    return this.#approaches.length;
  }

  /** Replaces the approaches of every intersection this MAP describes. */
  applyMap(map: MapData, enu: Enu): void {
    for (const node of map.nodes) {
      const id = node.id.id;
      const lat0 = node.refPos.lat / 1e7;
      const lon0 = node.refPos.long / 1e7;
      const list: Approach[] = [];
      for (const link of node.inLinks ?? []) {
        const pts = link.points ?? link.lanes[0]?.points;
        if (!pts || pts.length < 2) continue;
        const xy = pts.map((p) => offsetXY(p.posOffset, lat0, lon0, enu));
        const last = xy[xy.length - 1] as [number, number];
        const prev = xy[xy.length - 2] as [number, number];
        const len = Math.hypot(last[0] - prev[0], last[1] - prev[1]);
        if (!(len > 0)) continue;
        const phase = link.movements?.[0]?.phaseId ?? link.lanes[0]?.connectsTo?.[0]?.phaseId;
        if (phase === undefined) continue;
        const ux = (last[0] - prev[0]) / len;
        const uy = (last[1] - prev[1]) / len;
        const lim = link.speedLimits?.[0]?.speed;
        list.push({
          intersection: id,
          phase,
          stopX: last[0],
          stopY: last[1],
          ux,
          uy,
          headingDeg: ((Math.atan2(ux, uy) * 180) / Math.PI + 360) % 360,
          limitMs: lim === undefined ? Number.NaN : lim * 0.02,
        });
      }
      this.#byIntersection.set(id, list);
    }
    this.#approaches = [...this.#byIntersection.values()].flat();
  }

  applySpat(spat: SPAT, now: number): void {
    for (const is of spat.intersections) {
      let m = this.#phases.get(is.intersectionId.id);
      if (!m) {
        m = new Map();
        this.#phases.set(is.intersectionId.id, m);
      }
      for (const ph of is.phases) {
        const st = ph.phaseStates[0];
        if (!st) continue;
        const t = st.timing;
        const left = t && 'counting' in t ? t.counting.likelyEndTime : undefined;
        m.set(ph.id, { light: st.light, remainingS: left === undefined ? Number.NaN : left / 10, at: now });
      }
    }
  }

  /** RLVW / GLOSA for a vehicle on an approach with a known phase state. */
  evaluate(v: Vehicle, cfg: RiskConfig, out: SignalFinding[]): void {
    if (this.#approaches.length === 0) return;
    for (const a of this.#approaches) {
      if (angleDiffDeg(v.headingDeg, a.headingDeg) > 30) continue;
      const dx = a.stopX - v.x;
      const dy = a.stopY - v.y;
      const d = dx * a.ux + dy * a.uy;
      if (d <= 0 || d > cfg.rlvw.rangeM) continue;
      if (Math.abs(dx * a.uy - dy * a.ux) > cfg.rlvw.laneHalfWidthM) continue;
      const st = this.#phases.get(a.intersection)?.get(a.phase);
      if (!st) continue;
      const left = st.remainingS - (v.t - st.at) / 1000;
      const speed = v.speed;
      const arrive = speed > 0.1 ? d / speed : Number.POSITIVE_INFINITY;
      const needDecel = (speed * speed) / (2 * d);
      const base = { intersection: a.intersection, phase: a.phase, distanceM: round(d) };
      if (RED.has(st.light) || st.light === 'yellow') {
        const cannotStop = needDecel > cfg.rlvw.comfortDecelMs2;
        const entersOnRed = RED.has(st.light) ? !(left < arrive) : !(arrive <= left);
        if (cannotStop && entersOnRed && Number.isFinite(arrive)) {
          out.push({ type: 'RLVW', severity: 'critical', ttcS: round(arrive), ...base });
          continue;
        }
        if (RED.has(st.light) && left > 0 && Number.isFinite(left)) {
          const advised = d / left;
          if (advised >= cfg.glosa.minSpeedMs && speed - advised >= cfg.glosa.minChangeMs)
            out.push({
              type: 'GLOSA',
              severity: 'advisory',
              ttcS: null,
              advisedSpeedMs: round(advised),
              ...base,
            });
        }
      } else if (GREEN.has(st.light) && left > 0 && Number.isFinite(left) && arrive > left) {
        const advised = d / left;
        const limit = Number.isNaN(a.limitMs) ? Number.POSITIVE_INFINITY : a.limitMs;
        if (advised <= limit && advised >= cfg.glosa.minSpeedMs && advised - speed >= cfg.glosa.minChangeMs)
          out.push({
            type: 'GLOSA',
            severity: 'advisory',
            ttcS: null,
            advisedSpeedMs: round(advised),
            ...base,
          });
      }
    }
  }
}

function offsetXY(o: PositionOffsetLLV, lat0: number, lon0: number, enu: Enu): [number, number] {
  const ll = o.offsetLL as Record<string, { lon: number; lat: number }>;
  const k = Object.keys(ll)[0] as string;
  const p = ll[k] as { lon: number; lat: number };
  if (k === 'position-LatLon') return [enu.x(p.lon / 1e7), enu.y(p.lat / 1e7)];
  return [enu.x(lon0 + p.lon / 1e7), enu.y(lat0 + p.lat / 1e7)];
}
