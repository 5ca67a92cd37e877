import {
  checkName,
  DecodeError,
  dict,
  type FieldValue,
  MAX_KEYS,
  MAX_POINTS,
  type Point,
  put,
} from './point.js';

/**
 * JSON payloads: one flat object, or an array of them. Numbers, booleans and strings are fields;
 * `ts` (ms since the epoch, or an RFC 3339 string) is the time; `tags` an object of strings;
 * `measurement` and `device` may override the topic's. Nested objects and arrays elsewhere are
 * refused: flattening them silently would invent field names nobody asked for.
 */
export function decodeJson(
  text: string,
  topic: { device: string; measurement: string | null },
  receivedAt: number,
): Point[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`invalid JSON: ${(err as Error).message.slice(0, 120)}`);
  }
  const items = Array.isArray(doc) ? doc : [doc];
  if (items.length === 0) throw new DecodeError('empty JSON array');
  if (items.length > MAX_POINTS) throw new DecodeError(`more than ${MAX_POINTS} points in one payload`);
  return items.map((o, i) => one(o, topic, receivedAt, items.length > 1 ? `[${i}]` : ''));
}

function one(
  o: unknown,
  topic: { device: string; measurement: string | null },
  receivedAt: number,
  at: string,
): Point {
  if (o === null || typeof o !== 'object' || Array.isArray(o))
    throw new DecodeError(`JSON point${at} must be an object`);
  const fields = dict<FieldValue>();
  const tags = dict<string>();
  let ts = receivedAt;
  let measurement = topic.measurement;
  let device = topic.device;
  let n = 0;
  for (const [k, v] of Object.entries(o)) {
    if (++n > MAX_KEYS) throw new DecodeError(`JSON point${at} has more than ${MAX_KEYS} keys`);
    if (k === 'ts') ts = timestamp(v, at);
    else if (k === 'tags') readTags(v, tags, at);
    else if (k === 'measurement' && typeof v === 'string') measurement = checkName('measurement', v);
    else if (k === 'device' && typeof v === 'string') device = checkName('device', v);
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new DecodeError(`field ${k}${at} is not a finite number`);
      put(fields, checkName('field name', k), v);
    } else if (typeof v === 'boolean' || typeof v === 'string') put(fields, checkName('field name', k), v);
    else if (v === null)
      continue; // a device reporting "no reading" is not an error
    else throw new DecodeError(`field ${k.slice(0, 64)}${at} is nested; send flat fields`);
  }
  if (measurement === null)
    throw new DecodeError(`no measurement: the topic pattern has none and the JSON${at} gives none`);
  for (const _ in fields) return { measurement, device, tags, fields, ts };
  throw new DecodeError(`JSON point${at} has no fields`);
}

function readTags(v: unknown, tags: Record<string, string>, at: string): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new DecodeError(`tags${at} must be an object of strings`);
  let n = 0;
  for (const [k, t] of Object.entries(v)) {
    if (++n > MAX_KEYS) throw new DecodeError(`tags${at} has more than ${MAX_KEYS} keys`);
    if (typeof t !== 'string' && typeof t !== 'number' && typeof t !== 'boolean')
      throw new DecodeError(`tag ${k.slice(0, 64)}${at} must be a string`);
    put(tags, checkName('tag name', k), String(t));
  }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
/** Year 1678..2262: the span int64 nanoseconds can hold, so every sink can store it. */
const MIN_TS = -9_223_372_036_854;
const MAX_TS = 9_223_372_036_854;

function timestamp(v: unknown, at: string): number {
  let ms: number;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string' && RFC3339.test(v)) ms = Date.parse(v.replace(' ', 'T'));
  else throw new DecodeError(`ts${at} must be milliseconds since the epoch or an RFC 3339 time`);
  if (!Number.isFinite(ms) || ms < MIN_TS || ms > MAX_TS) throw new DecodeError(`ts${at} is out of range`);
  return Math.trunc(ms);
}
