import type { V2xConfig } from './config.js';
import { type BasicSafetyMessage, decodeFrame, type Format, type MessageFrame } from './frames.js';
import { Enu } from './geo.js';
import { Geofences } from './geofence.js';
import { evaluatePair, type Finding } from './risk.js';
import { type SignalFinding, Signals } from './signals.js';
import { isDuplicate, pushPath, type Vehicle, VehicleTable } from './state.js';
import type { RaisedWarning, Warning } from './warning.js';

export type DropReason =
  | 'undecodable'
  | 'stale'
  | 'duplicate'
  | 'outside'
  | 'capacity'
  | 'unsupported'
  | 'spoofed';
export const DROP_REASONS: readonly DropReason[] = [
  'undecodable',
  'stale',
  'duplicate',
  'outside',
  'capacity',
  'unsupported',
  'spoofed',
];
export type MessageKind = 'bsm' | 'spat' | 'map' | 'rsi' | 'rsm';
export const MESSAGE_KINDS: readonly MessageKind[] = ['bsm', 'spat', 'map', 'rsi', 'rsm'];

export interface EngineOptions {
  cfg: V2xConfig;
  /** Clock (ms since the epoch); tests and scenario scoring drive it. */
  now?: () => number;
  onWarning: (w: RaisedWarning) => void;
  onZone?: (vehicle: string, zone: string, event: 'enter' | 'leave') => void;
}

const DEG = Math.PI / 180;

/**
 * The hot path, synchronous and allocation-light: decode → stale / duplicate → geofence → state
 * update → neighbour query (grid) → risk applications → warnings (with a cooldown per type and
 * vehicles). Counters are plain numbers, exported to Prometheus at scrape time.
 */
export class Engine {
  /** Swapped whole by a live reconfiguration (reconfigure.ts), between messages: a message is handled synchronously. */
  cfg: V2xConfig;
  readonly geofences = new Geofences();
  readonly vehicles: VehicleTable;
  readonly signals = new Signals();
  readonly intake: Record<MessageKind, number> = { bsm: 0, spat: 0, map: 0, rsi: 0, rsm: 0 };
  readonly drops: Record<DropReason, number> = {
    undecodable: 0,
    stale: 0,
    duplicate: 0,
    outside: 0,
    capacity: 0,
    unsupported: 0,
    spoofed: 0,
  };
  readonly warningsByType: Record<string, number> = { FCW: 0, ICW: 0, EBW: 0, RLVW: 0, GLOSA: 0 };
  /** Last decode error message (for the HTTP batch answer). */
  lastError = '';
  #enu: Enu | null = null;
  readonly #now: () => number;
  readonly #o: EngineOptions;
  readonly #zoneScratch: string[] = [];
  readonly #findings: Finding[] = [];
  readonly #signalFindings: SignalFinding[] = [];
  readonly #cooldown = new Map<string, number>();
  #cur: Vehicle | null = null;
  #seq = 0;
  readonly #boot = Date.now().toString(36);
  readonly #visit: (o: Vehicle) => void;

  constructor(o: EngineOptions) {
    this.#o = o;
    this.cfg = o.cfg;
    this.#now = o.now ?? Date.now;
    this.vehicles = new VehicleTable({ cellM: o.cfg.risk.rangeM, maxVehicles: o.cfg.maxVehicles });
    for (const z of o.cfg.zones) this.geofences.set(z);
    if (o.cfg.origin.lat !== null && o.cfg.origin.lon !== null)
      this.#enu = new Enu(o.cfg.origin.lat, o.cfg.origin.lon);
    // One callback for every neighbour query (no closure per message).
    this.#visit = (other) => {
      const s = this.#cur as Vehicle;
      if (Math.abs(s.t - other.t) <= this.cfg.risk.maxStateAgeMs)
        evaluatePair(s, other, this.cfg.risk, this.#findings);
    };
  }

  get enu(): Enu | null {
    return this.#enu;
  }

  /**
   * Takes in one payload; returns why it was dropped, or null. `vehicle`: the publisher is the device
   * bound to this vehicle id, and `kind` the message its topic names: it may send only that kind,
   * and only BSMs with its own id (others are dropped as spoofed).
   */
  handlePayload(
    payload: Uint8Array,
    format: Format,
    intakeAt: number,
    vehicle: string | null = null,
    kind: MessageKind | null = null,
  ): DropReason | null {
    let frame: MessageFrame;
    try {
      frame = decodeFrame(payload, format);
    } catch (err) {
      this.lastError = (err as Error).message;
      this.drops.undecodable++;
      return 'undecodable';
    }
    return this.handleFrame(frame, intakeAt, vehicle, kind);
  }

  handleFrame(
    frame: MessageFrame,
    intakeAt: number,
    vehicle: string | null = null,
    kind: MessageKind | null = null,
  ): DropReason | null {
    if ('bsmFrame' in frame) {
      this.intake.bsm++;
      if (vehicle !== null && (kind !== 'bsm' || frame.bsmFrame.id !== vehicle)) return this.#drop('spoofed');
      return this.#bsm(frame.bsmFrame, intakeAt);
    }
    if (vehicle !== null) {
      // A device sends only the kind its topic names (an OBU's bsm topic carries no SPAT or MAP).
      const k =
        'spatFrame' in frame ? 'spat' : 'mapFrame' in frame ? 'map' : 'rsiFrame' in frame ? 'rsi' : 'rsm';
      if (k !== kind) {
        this.intake[k]++;
        return this.#drop('spoofed');
      }
    }
    if ('spatFrame' in frame) {
      this.intake.spat++;
      const s = frame.spatFrame;
      const now = this.#now();
      if (s.timeStamp !== undefined && this.#age(s.timeStamp, now) === null) return this.#drop('stale');
      this.signals.applySpat(s, now);
      return null;
    }
    if ('mapFrame' in frame) {
      this.intake.map++;
      const m = frame.mapFrame;
      const first = m.nodes[0];
      if (first) this.#ensureEnu(first.refPos.lat / 1e7, first.refPos.long / 1e7);
      this.signals.applyMap(m, this.#enu as Enu);
      return null;
    }
    if ('rsiFrame' in frame) this.intake.rsi++;
    else this.intake.rsm++;
    return this.#drop('unsupported');
  }

  /** Forgets silent vehicles and old cooldown entries; returns vehicles removed. */
  sweep(): number {
    const now = this.#now();
    for (const [k, t] of this.#cooldown) if (now - t > this.cfg.risk.cooldownMs) this.#cooldown.delete(k);
    const before = now - this.cfg.vehicleTtlMs;
    let n = 0;
    for (const v of this.vehicles.values())
      if (v.t < before) {
        for (const z of v.zones) this.#o.onZone?.(v.id, z, 'leave');
        this.vehicles.remove(v);
        n++;
      }
    return n;
  }

  #drop(r: DropReason): DropReason {
    this.drops[r]++;
    return r;
  }

  /** Age in ms of a DSecond (ms within the minute) against `now`, or null when older than maxAgeMs. */
  #age(secMark: number, now: number): number | null {
    if (secMark >= 60_000) return 0; // leap second or unavailable: take it as current
    let age = (now % 60_000) - secMark;
    if (age > 30_000) age -= 60_000;
    else if (age < -30_000) age += 60_000;
    return Math.abs(age) > this.cfg.maxAgeMs ? null : age;
  }

  #ensureEnu(lat: number, lon: number): void {
    if (this.#enu) return;
    const v = this.geofences.firstVertex();
    this.#enu = v ? new Enu(v.lat, v.lon) : new Enu(lat, lon);
  }

  #bsm(b: BasicSafetyMessage, intakeAt: number): DropReason | null {
    const now = this.#now();
    const age = this.#age(b.secMark, now);
    if (age === null) return this.#drop('stale');
    let v = this.vehicles.get(b.id);
    if (v && isDuplicate(v, b.msgCnt, now, this.cfg.dedupeWindowMs)) return this.#drop('duplicate');
    const lat = b.pos.lat / 1e7;
    const lon = b.pos.long / 1e7;
    const zones = this.#zoneScratch;
    if (this.geofences.size > 0 && this.geofences.zonesAt(lon, lat, zones) === 0) {
      if (v) {
        for (const z of v.zones) this.#o.onZone?.(v.id, z, 'leave');
        this.vehicles.remove(v);
      }
      return this.#drop('outside');
    }
    if (!v) {
      const added = this.vehicles.add(b.id, this.cfg.pathHistory);
      if (!added) return this.#drop('capacity');
      v = added;
      isDuplicate(v, b.msgCnt, now, this.cfg.dedupeWindowMs);
    }
    this.#ensureEnu(lat, lon);
    const enu = this.#enu as Enu;
    v.t = now - age;
    v.intakeAt = intakeAt;
    v.msgCnt = b.msgCnt;
    v.secMark = b.secMark;
    v.lat = lat;
    v.lon = lon;
    v.x = enu.x(lon);
    v.y = enu.y(lat);
    v.speed = b.speed === 8191 ? 0 : b.speed * 0.02;
    if (b.heading !== v.headingRaw) {
      v.headingRaw = b.heading;
      v.headingDeg = b.heading * 0.0125;
      v.hx = Math.sin(v.headingDeg * DEG);
      v.hy = Math.cos(v.headingDeg * DEG);
    }
    v.accel = b.accelSet.long === 2001 ? Number.NaN : b.accelSet.long * 0.01;
    v.brakePedal = b.brakes.brakePadel === 'on';
    const events = b.safetyExt?.events;
    v.hardBraking = typeof events === 'string' && events.charCodeAt(7) === 49; // eventHardBraking
    if (b.size.length > 0) v.lengthM = b.size.length / 100;
    if (b.size.width > 0) v.widthM = b.size.width / 100;
    pushPath(v);
    this.vehicles.place(v);
    if (this.geofences.size > 0) this.#zonesChanged(v, zones);

    const findings = this.#findings;
    findings.length = 0;
    this.#cur = v;
    this.vehicles.forNeighbours(v.x, v.y, v, this.#visit);
    this.#cur = null;
    for (let i = 0; i < findings.length; i++) {
      const f = findings[i] as Finding;
      this.#raise(f.type, f.severity, [f.actor.id, f.other.id], v, {
        ttcS: f.ttcS,
        timeGapS: f.timeGapS,
        distanceM: f.distanceM,
      });
    }
    const sf = this.#signalFindings;
    sf.length = 0;
    this.signals.evaluate(v, this.cfg.risk, sf);
    for (const f of sf)
      this.#raise(f.type, f.severity, [v.id], v, {
        ttcS: f.ttcS,
        timeGapS: null,
        distanceM: f.distanceM,
        intersection: f.intersection,
        phase: f.phase,
        ...(f.advisedSpeedMs === undefined ? {} : { advisedSpeedMs: f.advisedSpeedMs }),
      });
    return null;
  }

  #zonesChanged(v: Vehicle, now: string[]): void {
    const before = v.zones;
    if (before.length === now.length) {
      let same = true;
      for (let i = 0; i < now.length && same; i++) same = before[i] === now[i];
      if (same) return;
    }
    for (const z of before) if (!now.includes(z)) this.#o.onZone?.(v.id, z, 'leave');
    for (const z of now) if (!before.includes(z)) this.#o.onZone?.(v.id, z, 'enter');
    v.zones = [...now];
  }

  #raise(
    type: Warning['type'],
    severity: Warning['severity'],
    vehicles: string[],
    trigger: Vehicle,
    extra: Pick<Warning, 'ttcS' | 'timeGapS' | 'distanceM'> &
      Partial<Pick<Warning, 'advisedSpeedMs' | 'intersection' | 'phase'>>,
  ): void {
    const now = this.#now();
    const key =
      type === 'ICW'
        ? `${type}|${vehicles.slice().sort().join('|')}`
        : `${type}|${vehicles.join('|')}|${extra.intersection ?? ''}`;
    const last = this.#cooldown.get(key);
    if (last !== undefined && now - last < this.cfg.risk.cooldownMs) return;
    this.#cooldown.set(key, now);
    this.warningsByType[type] = (this.warningsByType[type] ?? 0) + 1;
    const warning: Warning = {
      id: `w-${this.#boot}-${++this.#seq}`,
      type,
      severity,
      vehicles,
      ...extra,
      at: now,
      trigger: { type: 'bsm', vehicle: trigger.id, msgCnt: trigger.msgCnt, secMark: trigger.secMark },
    };
    this.#o.onWarning({ warning, intakeAt: trigger.intakeAt });
  }
}

/** The message kind a topic names as one of its levels (v2x/<id>/bsm, …/spat/json), or null. */
export function kindOfTopic(topic: string): MessageKind | null {
  for (let i = 0; i < MESSAGE_KINDS.length; i++) {
    const k = MESSAGE_KINDS[i] as MessageKind;
    let at = topic.indexOf(k);
    while (at >= 0) {
      const end = at + k.length;
      if (
        (at === 0 || topic.charCodeAt(at - 1) === 47) &&
        (end === topic.length || topic.charCodeAt(end) === 47)
      )
        return k;
      at = topic.indexOf(k, end);
    }
  }
  return null;
}
