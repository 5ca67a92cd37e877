import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify } from 'yaml';
import { KapokError, messageOf } from '../core/errors.js';
import {
  OVERLAY_MARK,
  overlaySegment,
  parseSelector,
  type Selector,
  splitKey,
  TOMBSTONE,
} from '../ports/config-overlay.js';
import { configPath } from '../ports/config-source.js';

/**
 * What `kapok config push` turns into keys (docs/control.md#operator-commands): the whole content
 * of the prefix as it should be, computed from what etcd holds now. Pure: no etcd, no schema.
 */
export interface PushInput {
  /** A YAML file: the etcd layer as a whole (fleet), or the overlay as a whole (with a selector). */
  file?: string | undefined;
  /** `path=value` (the value is YAML: `log.level=debug`, `gateway.limits.default.rpm=1200`). */
  sets: string[];
  /** Paths to delete (with a selector: for the matching instances only, by a tombstone). */
  unsets: string[];
  /** A label selector (`zone=a,tier=canary`): the change reaches only instances it matches. */
  selector?: string | undefined;
  /** With a selector: delete its overlay (end of a staged rollout, or its abort). */
  clear?: boolean | undefined;
}

export interface PushPlan {
  next: Map<string, string>;
  selector: Selector | null;
  /** What was asked, for the history (paths and file names, never values). */
  note: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `gateway.limits.default.rpm` → its key path segments, refused if it cannot be a config path. */
function pathOf(dotted: string): string[] {
  const parts = dotted.split('.');
  configPath(parts.join('/'), dotted);
  return parts;
}

const under = (key: string, base: string) => key === base || key.startsWith(`${base}/`);

/** Removes `path` inside a key's YAML value (a coarser key holds it); null: the key becomes empty. */
function withoutPath(text: string, path: string[]): string | null {
  const value = parseYaml(text) as unknown;
  let cur: unknown = value;
  for (const p of path.slice(0, -1))
    cur = isObject(cur) || Array.isArray(cur) ? (cur as never)[p] : undefined;
  const last = path[path.length - 1] as string;
  if (isObject(cur)) delete cur[last];
  else if (Array.isArray(cur) && /^\d+$/.test(last)) cur.splice(Number(last), 1);
  return isObject(value) && Object.keys(value).length === 0 ? null : stringify(value);
}

export function planPush(current: ReadonlyMap<string, string>, input: PushInput): PushPlan {
  const selector = input.selector ? parseSelector(input.selector) : null;
  if (input.clear && !selector)
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      '--clear needs --selector: it deletes the overlay of that selector',
    );
  if (!input.file && !input.sets.length && !input.unsets.length && !input.clear)
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      'nothing to push: give a YAML file, --set path=value, --unset path or --selector S --clear',
    );
  const scope = selector ? `${overlaySegment(selector)}/` : '';
  const inScope = (k: string) => (selector ? k.startsWith(scope) : !k.startsWith(OVERLAY_MARK));
  const next = new Map(current);
  const notes: string[] = [];
  if (selector) notes.push(`selector ${input.selector}`);
  if (input.clear) {
    for (const k of [...next.keys()]) if (inScope(k)) next.delete(k);
    notes.push('clear');
  }
  if (input.file) {
    let tree: unknown;
    try {
      tree = parseYaml(readFileSync(input.file, 'utf8'));
    } catch (err) {
      throw new KapokError('KAPOK_CONFIG_PARSE', `${input.file}: ${messageOf(err).split('\n')[0]}`);
    }
    if (tree !== null && !isObject(tree))
      throw new KapokError('KAPOK_CONFIG_INVALID', `${input.file}: expected a mapping of config sections`);
    const sections = (tree ?? {}) as Record<string, unknown>;
    for (const k of [...next.keys()]) if (inScope(k)) next.delete(k);
    // One key per top-level section: the file is the layer (or the overlay) as a whole.
    for (const [section, value] of Object.entries(sections)) {
      pathOf(section);
      next.set(scope + section, stringify(value));
    }
    if (selector) {
      // Sections the fleet has and the file lacks are deleted for the matching instances.
      const fleet = new Set(
        [...current.keys()].filter((k) => !k.startsWith(OVERLAY_MARK)).map((k) => k.split('/')[0]),
      );
      for (const section of fleet)
        if (section && !Object.hasOwn(sections, section)) next.set(scope + section, TOMBSTONE);
    }
    notes.push(`file ${input.file}`);
  }
  for (const set of input.sets) {
    const eq = set.indexOf('=');
    if (eq <= 0)
      throw new KapokError(
        'KAPOK_CONFIG_INVALID',
        `--set ${JSON.stringify(set.slice(0, 100))}: expected path=value (log.level=debug)`,
      );
    const path = pathOf(set.slice(0, eq));
    const text = set.slice(eq + 1);
    try {
      parseYaml(text);
    } catch (err) {
      throw new KapokError(
        'KAPOK_CONFIG_PARSE',
        `--set ${path.join('.')}: the value is not valid YAML (${messageOf(err).split('\n')[0]})`,
      );
    }
    const key = scope + path.join('/');
    // Finer keys under the path would override the value just set.
    for (const k of [...next.keys()]) if (k !== key && under(k, key)) next.delete(k);
    next.set(key, text);
    notes.push(`set ${path.join('.')}`);
  }
  for (const unset of input.unsets) {
    const path = pathOf(unset);
    const key = scope + path.join('/');
    for (const k of [...next.keys()]) if (under(k, key)) next.delete(k);
    if (selector) next.set(key, TOMBSTONE);
    else
      for (const [k, text] of [...next]) {
        if (!inScope(k)) continue;
        const kp = splitKey(k, k).path;
        // A coarser key holding the path: the path is taken out of its value.
        if (kp.length < path.length && kp.every((p, i) => p === path[i])) {
          const rest = withoutPath(text, path.slice(kp.length));
          if (rest === null) next.delete(k);
          else next.set(k, rest);
        }
      }
    notes.push(`unset ${path.join('.')}`);
  }
  return { next, selector, note: notes.join('; ') };
}

/** The label sets to check a prefix content with: the fleet's (no labels) and each overlay's own. */
export function viewsOf(keys: ReadonlyMap<string, string>): Array<Record<string, string>> {
  const views = new Map<string, Record<string, string>>([['', {}]]);
  for (const k of keys.keys()) {
    if (!k.startsWith(OVERLAY_MARK)) continue;
    const sel = splitKey(k, k).selector;
    if (sel) views.set(JSON.stringify(sel), { ...sel });
  }
  return [...views.values()];
}
