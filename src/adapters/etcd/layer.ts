import { parse as parseYaml } from 'yaml';
import { KapokError, messageOf } from '../../core/errors.js';
import { removeAt, selectorMatches, selectorText, splitKey, TOMBSTONE } from '../../ports/config-overlay.js';
import { type ConfigTree, placeAt } from '../../ports/config-source.js';

/**
 * The layer that keys under `prefix` make for an instance with `labels`: the fleet's keys, then the
 * overlays whose selector matches (in selector order), then their tombstones; coarser keys first in
 * each step so finer ones override them. Used by the source and by `kapok config push` to validate.
 */
export function buildLayer(
  prefix: string,
  held: Iterable<[string, string]>,
  labels: Readonly<Record<string, string>>,
  /** A value's parse (the source caches them); the result is merged into, so it must be its own. */
  parse: (key: string, text: string) => unknown = parseValue,
): ConfigTree {
  const entries = [];
  for (const [key, text] of held) {
    const { selector, path } = splitKey(key.slice(prefix.length), key);
    if (selector && !selectorMatches(selector, labels)) continue;
    const step = !selector ? 0 : text.trim() === TOMBSTONE ? 2 : 1;
    entries.push({ key, path, text, step, sel: selector ? selectorText(selector) : '' });
  }
  entries.sort(
    (a, b) =>
      a.step - b.step ||
      (a.sel < b.sel ? -1 : a.sel > b.sel ? 1 : 0) ||
      a.path.length - b.path.length ||
      (a.key < b.key ? -1 : 1),
  );
  const tree: ConfigTree = {};
  for (const e of entries) {
    if (e.step === 2) {
      removeAt(tree, e.path);
      continue;
    }
    placeAt(tree, e.path, parse(e.key, e.text));
  }
  return tree;
}

/** A key's value as YAML (JSON is YAML); the error names the key, never the value. */
export function parseValue(key: string, text: string): unknown {
  try {
    return parseYaml(text, { uniqueKeys: true, maxAliasCount: 100, prettyErrors: false });
  } catch (err) {
    throw new KapokError(
      'KAPOK_CONFIG_PARSE',
      `config key ${JSON.stringify(key)} is not valid YAML or JSON: ${messageOf(err).split('\n')[0]}`,
      { cause: err },
    );
  }
}
