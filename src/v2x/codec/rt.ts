/**
 * Checks shared by the generated encoders and JSON validators, and the SEQUENCE extension skipper.
 * Every failure is a PerFail whose path the generated composites complete.
 */
import { BITS_RE, fail, type Reader } from './per.js';

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return v === null ? 'null' : Array.isArray(v) ? 'an array' : 'an object';
  return String(v);
}

export function int(v: unknown, lb: number, ub: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`expected an integer ${lb}..${ub}, got ${show(v)}`);
  if (v < lb || v > ub) fail(`value ${v} out of range ${lb}..${ub}`);
  return v;
}

export function bitString(v: unknown, min: number, max: number): string {
  if (typeof v !== 'string' || !BITS_RE.test(v)) fail(`expected a string of '0'/'1' bits, got ${show(v)}`);
  if (v.length < min || v.length > max)
    fail(`bit string of ${v.length} bits, must be ${min === max ? min : `${min}..${max}`}`);
  return v;
}

const HEX_ANY = /^(?:[0-9a-fA-F]{2})*$/;

export function hex(v: unknown, min: number, max: number): string {
  if (typeof v !== 'string' || !HEX_ANY.test(v)) fail(`expected a hex string, got ${show(v)}`);
  const n = v.length / 2;
  if (n < min || n > max) fail(`${n} octets, must be ${min === max ? min : `${min}..${max}`}`);
  return v;
}

export function ia5(v: unknown, min: number, max: number): string {
  if (typeof v !== 'string') fail(`expected a string, got ${show(v)}`);
  if (v.length < min || v.length > max) fail(`${v.length} characters, must be ${min}..${max}`);
  for (let i = 0; i < v.length; i++)
    if (v.charCodeAt(i) > 127) fail(`character ${i} is not IA5 (ASCII): ${JSON.stringify(v[i])}`);
  return v;
}

export function badEnum(v: unknown, type: string, names: readonly string[]): never {
  fail(`${show(v)} is not a ${type} value (${names.join(', ')})`);
}

/** The one key of a CHOICE object, which must be one of `alts`. */
export function choiceKey(v: unknown, alts: readonly string[]): string {
  if (!isObject(v)) fail(`expected an object with one of ${alts.join(', ')}, got ${show(v)}`);
  let k: string | undefined;
  for (const name in v) {
    if (k !== undefined) fail(`a CHOICE has exactly one key, got ${k} and ${name}`);
    k = name;
  }
  if (k === undefined || !alts.includes(k)) fail(`expected one of ${alts.join(', ')}, got ${show(k)}`);
  return k;
}

/**
 * Skips the extension additions of a SEQUENCE (X.691 (2002) 18.7-18.9): a normally small length n, n
 * presence bits, then each present addition as an open type. None are known to these modules, so
 * all are skipped (as X.691 asks of a decoder of an earlier version).
 */
export function skipExtensions(r: Reader): void {
  let n: number;
  if (!r.bit()) n = r.bits(6) + 1;
  else {
    n = r.length();
    if (n === 0) fail('extension bitmap of length 0');
  }
  if (r.pos + n > r.end) fail(`extension bitmap of ${n} bits exceeds the input`);
  let present = 0;
  for (let i = 0; i < n; i++) if (r.bit()) present++;
  for (let i = 0; i < present; i++) r.skipOpenType();
}
