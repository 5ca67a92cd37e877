import { KapokError } from '../core/errors.js';

/**
 * Canonical JSON (docs/audit.md#canonical-json): the one byte string a hash or signature covers.
 * - an object's keys sorted by UTF-16 code unit (JavaScript's default sort; every key here is ASCII,
 *   so this is also byte order), no whitespace anywhere;
 * - strings as JSON.stringify writes them (ECMA-262 JSON.stringify: `"` `\\` and controls escaped,
 *   lone surrogates as \uXXXX, everything else literal), then UTF-8;
 * - numbers: safe integers only, in decimal; null; nested objects; no arrays, floats or booleans
 *   (entries have none, and refusing them keeps every implementation's output identical).
 * This is the subset of RFC 8785 (JCS) the entries use: JCS gives the same bytes for them.
 */
export function canonicalJson(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw bad(`number ${v} is not a safe integer`);
    return String(v);
  }
  if (typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw bad(`a value of type ${Array.isArray(v) ? 'array' : typeof v} has no canonical form here`);
}

const bad = (msg: string) => new KapokError('KAPOK_AUDIT_INVALID_RECORD', `canonical JSON: ${msg}`);
