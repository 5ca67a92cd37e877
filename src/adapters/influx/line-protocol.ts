import type { Point } from '../../ports/timeseries.js';

// InfluxDB 1.x reads `\,` `\ ` `\=` `\"` in names as escapes and any other backslash as itself, so a
// backslash is written as it is; one before those characters or at the end of a name cannot be
// written at all, nor can a newline (it ends the line: it would start a forged point).
const esc = (s: string, re: RegExp) => s.replace(re, '\\$&');
const MEAS = /[, ]/g;
const KEY = /[,= ]/g;
const BACKSLASH_UNSAFE = /\\(?:[ ,="]|$)/;
const unsafe = (s: string) => s.indexOf('\n') !== -1 || (s.indexOf('\\') !== -1 && BACKSLASH_UNSAFE.test(s));

/**
 * Points → line protocol, ms timestamps. The device goes as the `device` tag (a `device` key among
 * the tags is left out for it); a tag with an empty value is left out (InfluxDB has none: absent
 * means empty). Numbers go as floats: a point does not say int or float, and InfluxDB refuses a
 * field whose type changes, so one type for every number is the safe choice. A point with a name
 * line protocol cannot carry is left out and counted in `skipped.n`.
 */
export function toLineProtocol(points: readonly Point[], skipped?: { n: number }): string {
  let out = '';
  next: for (const p of points) {
    if (unsafe(p.measurement) || unsafe(p.device)) {
      if (skipped) skipped.n++;
      continue;
    }
    let line = `${esc(p.measurement, MEAS)},device=${esc(p.device, KEY)}`;
    for (const k of Object.keys(p.tags).sort()) {
      const v = p.tags[k] as string;
      if (k === 'device' || v === '') continue;
      if (unsafe(k) || unsafe(v)) {
        if (skipped) skipped.n++;
        continue next;
      }
      line += `,${esc(k, KEY)}=${esc(v, KEY)}`;
    }
    let first = true;
    for (const k in p.fields) {
      if (unsafe(k)) {
        if (skipped) skipped.n++;
        continue next;
      }
      const v = p.fields[k];
      line += `${first ? ' ' : ','}${esc(k, KEY)}=`;
      first = false;
      if (typeof v === 'string') line += `"${v.replace(/["\\]/g, '\\$&')}"`;
      else if (typeof v === 'boolean') line += v ? 'true' : 'false';
      else line += String(v);
    }
    out += `${line} ${p.ts}\n`;
  }
  return out;
}
