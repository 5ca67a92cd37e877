import { KapokError } from '../core/errors.js';

/**
 * The one file that talks to the codec (src/v2x/codec/). TEMPORARY: until the codec lands, the JSON
 * path below checks only what the engine reads, and UPER is refused.
 */

export type Format = 'uper' | 'json';

export interface Position3D {
  lat: number;
  long: number;
  elevation?: number;
}

export interface BasicSafetyMessage {
  msgCnt: number;
  id: string;
  secMark: number;
  pos: Position3D;
  transmission: string;
  speed: number;
  heading: number;
  accelSet: { long: number; lat: number; vert: number; yaw: number };
  brakes: { brakePadel?: string; [k: string]: unknown };
  size: { width: number; length: number; height?: number };
  vehicleClass: { classification: number; fuelType?: number };
  safetyExt?: { events?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface SPAT {
  msgCnt: number;
  moy?: number;
  timeStamp?: number;
  intersections: Array<{
    intersectionId: { region?: number; id: number };
    status: string;
    phases: Array<{
      id: number;
      phaseStates: Array<{
        light: string;
        timing?: { counting?: { startTime: number; likelyEndTime: number; [k: string]: unknown } };
      }>;
    }>;
    [k: string]: unknown;
  }>;
  [k: string]: unknown;
}

export interface PositionOffsetLLV {
  offsetLL: Record<string, { lon: number; lat: number }>;
  [k: string]: unknown;
}

export interface MapData {
  msgCnt: number;
  nodes: Array<{
    id: { region?: number; id: number };
    refPos: Position3D;
    inLinks?: Array<{
      upstreamNodeId: { region?: number; id: number };
      points?: Array<{ posOffset: PositionOffsetLLV }>;
      movements?: Array<{ remoteIntersection: { region?: number; id: number }; phaseId?: number }>;
      lanes: Array<{
        laneID: number;
        points?: Array<{ posOffset: PositionOffsetLLV }>;
        connectsTo?: Array<{ phaseId?: number; [k: string]: unknown }>;
        [k: string]: unknown;
      }>;
      speedLimits?: Array<{ type: string; speed: number }>;
      [k: string]: unknown;
    }>;
    [k: string]: unknown;
  }>;
  [k: string]: unknown;
}

export type MessageFrame =
  | { bsmFrame: BasicSafetyMessage }
  | { spatFrame: SPAT }
  | { mapFrame: MapData }
  | { rsiFrame: unknown }
  | { rsmFrame: unknown };

function bad(path: string, what: string): KapokError {
  return new KapokError('KAPOK_HTTP_BAD_REQUEST', `${path}: ${what}`);
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw bad(path, `expected an integer ${min}..${max}`);
  return v;
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(path, 'expected an object');
  return v as Record<string, unknown>;
}

/** Temporary JSON check of the fields the engine reads (the codec's fromJson replaces it). */
function fromJson(value: unknown): MessageFrame {
  const f = obj(value, 'MessageFrame');
  const keys = Object.keys(f);
  if (keys.length !== 1) throw bad('MessageFrame', 'expected exactly one alternative');
  const key = keys[0] as string;
  if (key === 'bsmFrame') {
    const b = obj(f.bsmFrame, 'bsmFrame');
    int(b.msgCnt, 'bsmFrame.msgCnt', 0, 127);
    if (typeof b.id !== 'string' || !/^[0-9a-f]{16}$/.test(b.id))
      throw bad('bsmFrame.id', 'expected 16 hex digits');
    int(b.secMark, 'bsmFrame.secMark', 0, 65535);
    const p = obj(b.pos, 'bsmFrame.pos');
    int(p.lat, 'bsmFrame.pos.lat', -900000000, 900000001);
    int(p.long, 'bsmFrame.pos.long', -1799999999, 1800000001);
    int(b.speed, 'bsmFrame.speed', 0, 8191);
    int(b.heading, 'bsmFrame.heading', 0, 28800);
    const a = obj(b.accelSet, 'bsmFrame.accelSet');
    int(a.long, 'bsmFrame.accelSet.long', -2000, 2001);
    obj(b.brakes, 'bsmFrame.brakes');
    const s = obj(b.size, 'bsmFrame.size');
    int(s.width, 'bsmFrame.size.width', 0, 1023);
    int(s.length, 'bsmFrame.size.length', 0, 4095);
    return f as unknown as MessageFrame;
  }
  if (key === 'spatFrame' || key === 'mapFrame' || key === 'rsiFrame' || key === 'rsmFrame') {
    obj(f[key], key);
    return f as unknown as MessageFrame;
  }
  throw bad('MessageFrame', `unknown alternative ${key.slice(0, 40)}`);
}

/** Decodes one payload. Throws a KapokError (400) naming the field path on bad input. */
export function decodeFrame(payload: Uint8Array, format: Format): MessageFrame {
  if (format === 'uper') throw bad('payload', 'UPER decoding is not available in this build yet');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    throw bad('payload', 'not valid JSON');
  }
  return fromJson(value);
}

/** Validates a JSON value already parsed (HTTP batches). */
export function frameFromJson(value: unknown): MessageFrame {
  return fromJson(value);
}

/** Encodes a frame for the wire (simulator, tests). */
export function encodeFrame(frame: MessageFrame, format: Format): Buffer {
  if (format === 'uper') throw new KapokError('KAPOK_HTTP_BAD_REQUEST', 'UPER encoding is not available yet');
  return Buffer.from(JSON.stringify(frame));
}

/** The payload format of an MQTT message: configured, or auto by topic suffix and first byte. */
export function formatOf(topic: string, payload: Uint8Array, configured: 'auto' | Format): Format {
  if (configured !== 'auto') return configured;
  if (topic.endsWith('/json')) return 'json';
  if (topic.endsWith('/uper')) return 'uper';
  return payload[0] === 0x7b ? 'json' : 'uper';
}
