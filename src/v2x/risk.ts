import type { RiskConfig } from './config.js';
import type { Vehicle } from './state.js';
import type { Severity, WarningType } from './warning.js';

/** What an application found for a pair; the caller turns it into a Warning (cooldown, ids). */
export interface Finding {
  type: WarningType;
  severity: Severity;
  /** The vehicle that must act first. */
  actor: Vehicle;
  other: Vehicle;
  ttcS: number | null;
  timeGapS: number | null;
  distanceM: number | null;
}

/**
 * Pairwise CSAE day-1 applications between the vehicle just updated (`s`) and a neighbour (`o`),
 * with `o` extrapolated at constant velocity to `s`'s time:
 * - FCW: same direction (within sameDirectionDeg), lateral offset within the lane band, the
 *   follower closing in with time-to-collision (bumper gap / closing speed) ≤ ttcWarnS.
 * - EBW: same lane band, the vehicle ahead decelerating at ≥ ebw.decelMs2 or flagging hard braking,
 *   within ebw.rangeM.
 * - ICW: headings crossing (minCrossingDeg..180-minCrossingDeg), both reaching the crossing point of
 *   their paths ahead within timeGapS of each other and the first within horizonS.
 * Opposite directions, other lanes and vehicles behind that are not closing stay silent.
 */
export function evaluatePair(s: Vehicle, o: Vehicle, cfg: RiskConfig, out: Finding[]): void {
  const dt = (s.t - o.t) / 1000;
  const ox = o.x + o.hx * o.speed * dt;
  const oy = o.y + o.hy * o.speed * dt;
  const dx = ox - s.x;
  const dy = oy - s.y;
  const d2 = dx * dx + dy * dy;
  if (d2 > cfg.rangeM * cfg.rangeM) return;
  // Heading difference through the unit vectors' dot product (cos of the angle): no modulo.
  const cos = s.hx * o.hx + s.hy * o.hy;
  if (cos >= cosOf(cfg.sameDirectionDeg)) {
    const along = dx * s.hx + dy * s.hy;
    const lateral = Math.abs(dx * s.hy - dy * s.hx);
    if (lateral > cfg.laneHalfWidthM) return;
    const lead = along > 0 ? o : s;
    const follow = along > 0 ? s : o;
    const gap = Math.abs(along) - (lead.lengthM + follow.lengthM) / 2;
    const leadV = lead.speed * (lead.hx * follow.hx + lead.hy * follow.hy);
    const closing = follow.speed - leadV;
    const ttc = closing > 0.1 ? Math.max(gap, 0) / closing : Number.POSITIVE_INFINITY;
    const braking = lead.hardBraking || (!Number.isNaN(lead.accel) && lead.accel <= -cfg.ebw.decelMs2);
    if (braking && gap <= cfg.ebw.rangeM && follow.speed > 1) {
      out.push({
        type: 'EBW',
        severity: ttc <= cfg.fcw.ttcCriticalS ? 'critical' : 'warning',
        actor: follow,
        other: lead,
        ttcS: Number.isFinite(ttc) ? round(ttc) : null,
        timeGapS: null,
        distanceM: round(gap),
      });
    }
    if (ttc <= cfg.fcw.ttcWarnS) {
      out.push({
        type: 'FCW',
        severity: ttc <= cfg.fcw.ttcCriticalS ? 'critical' : 'warning',
        actor: follow,
        other: lead,
        ttcS: round(ttc),
        timeGapS: null,
        distanceM: round(gap),
      });
    }
    return;
  }
  if (Math.abs(cos) > cosOf(cfg.icw.minCrossingDeg)) return;
  if (s.speed < 0.5 || o.speed < 0.5) return;
  // Rays s + a·hs and o + b·ho: a, b are the distances to the crossing point.
  const den = s.hx * o.hy - s.hy * o.hx;
  if (Math.abs(den) < 1e-6) return;
  const a = (dx * o.hy - dy * o.hx) / den;
  const b = (dx * s.hy - dy * s.hx) / den;
  if (a < -s.lengthM / 2 || b < -o.lengthM / 2) return; // one has already passed the point
  const ts = Math.max(a, 0) / s.speed;
  const to = Math.max(b, 0) / o.speed;
  const first = Math.min(ts, to);
  const gapS = Math.abs(ts - to);
  if (first > cfg.icw.horizonS || gapS > cfg.icw.timeGapS) return;
  const later = ts >= to ? s : o;
  out.push({
    type: 'ICW',
    severity: first <= cfg.icw.criticalS ? 'critical' : 'warning',
    actor: later,
    other: later === s ? o : s,
    ttcS: round(Math.max(ts, to)),
    timeGapS: round(gapS),
    distanceM: round(later === s ? a : b),
  });
}

const cosCache = new Map<number, number>();
/** cos of an angle in degrees, memoised (thresholds are a handful of config values). */
function cosOf(deg: number): number {
  let c = cosCache.get(deg);
  if (c === undefined) {
    c = Math.cos((deg * Math.PI) / 180);
    cosCache.set(deg, c);
  }
  return c;
}

export function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
