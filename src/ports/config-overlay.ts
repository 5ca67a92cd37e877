import { KapokError } from '../core/errors.js';
import { type ConfigTree, configPath } from './config-source.js';

/**
 * Staged rollout (docs/control.md#staged-rollout): keys under `<prefix>@<selector>/` form an
 * overlay that only instances whose `control.labels` match the selector apply, over the fleet's
 * keys. A value of exactly `!delete` is a tombstone: matching instances drop that path. Shared by
 * the etcd source (which applies overlays) and the operator commands (which write them).
 */

export type Selector = Readonly<Record<string, string>>;

/** The first character of an overlay's key segment. */
export const OVERLAY_MARK = '@';
/** A key whose value is this text deletes its path for the instances its overlay selects. */
export const TOMBSTONE = '!delete';

const PART = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

/** `zone=a,tier=canary` → {tier: 'canary', zone: 'a'}; every pair must match, so order is free. */
export function parseSelector(text: string): Selector {
  const out: Record<string, string> = {};
  const pairs = text.split(',').map((p) => p.trim());
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const k = pair.slice(0, eq);
    const v = pair.slice(eq + 1);
    if (eq < 0 || !PART.test(k) || !PART.test(v) || Object.hasOwn(out, k))
      throw new KapokError(
        'KAPOK_CONTROL_SELECTOR',
        `label selector ${JSON.stringify(text.slice(0, 200))}: ${eq < 0 ? 'expected key=value' : Object.hasOwn(out, k) ? `label ${k} named twice` : 'keys and values are 1-63 of A-Z a-z 0-9 . _ / -'} (write zone=a,tier=canary)`,
      );
    out[k] = v;
  }
  return out;
}

/** The canonical text of a selector: pairs sorted by key. */
export function selectorText(sel: Selector): string {
  return Object.keys(sel)
    .sort()
    .map((k) => `${k}=${sel[k]}`)
    .join(',');
}

/** The key segment of an overlay (`/` in a label is escaped so the segment stays one). */
export function overlaySegment(sel: Selector): string {
  return OVERLAY_MARK + encodeURIComponent(selectorText(sel));
}

export const selectorMatches = (sel: Selector, labels: Readonly<Record<string, string>>): boolean =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

export interface SplitKey {
  /** null: a fleet key; else the overlay's selector. */
  selector: Selector | null;
  path: string[];
}

/** A key relative to the prefix → its overlay (if any) and config path; refuses what is neither. */
export function splitKey(relative: string, fullKey: string): SplitKey {
  if (!relative.startsWith(OVERLAY_MARK)) return { selector: null, path: configPath(relative, fullKey) };
  const slash = relative.indexOf('/');
  const seg = relative.slice(1, slash < 0 ? undefined : slash);
  let selector: Selector;
  try {
    selector = parseSelector(decodeURIComponent(seg));
  } catch {
    throw new KapokError(
      'KAPOK_CONTROL_BAD_KEY',
      `config key ${JSON.stringify(fullKey)}: "@${seg}" is not a label selector (write @zone=a,tier=canary)`,
    );
  }
  if (slash < 0)
    throw new KapokError(
      'KAPOK_CONTROL_BAD_KEY',
      `config key ${JSON.stringify(fullKey)}: an overlay key needs a config path after the selector (@zone=a/log)`,
    );
  return { selector, path: configPath(relative.slice(slash + 1), fullKey) };
}

const isObject = (v: unknown): v is ConfigTree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Removes `path` from `tree` (a tombstone); a missing path is no change. */
export function removeAt(tree: ConfigTree, path: readonly string[]): void {
  let cur: unknown = tree;
  for (const key of path.slice(0, -1)) {
    if (!isObject(cur) && !Array.isArray(cur)) return;
    cur = (cur as Record<string, unknown>)[key];
  }
  const last = path[path.length - 1] as string;
  if (isObject(cur)) delete cur[last];
  else if (Array.isArray(cur) && /^\d+$/.test(last)) cur.splice(Number(last), 1);
}

export interface KeyChange {
  /** Relative to the prefix. */
  key: string;
  op: 'put' | 'delete';
}

/** The keys `to` writes or deletes compared with `from` (sorted by key). */
export function diffKeys(from: ReadonlyMap<string, string>, to: ReadonlyMap<string, string>): KeyChange[] {
  const out: KeyChange[] = [];
  for (const [k, v] of to) if (from.get(k) !== v) out.push({ key: k, op: 'put' });
  for (const k of from.keys()) if (!to.has(k)) out.push({ key: k, op: 'delete' });
  return out.sort((a, b) => (a.key < b.key ? -1 : 1));
}
