import { KapokError } from '../core/errors.js';

/**
 * Where the configuration comes from, besides the KAPOK_* environment (which always wins). A source
 * yields a *layer*: a raw tree of config keys, not yet validated; the wiring point merges the
 * layers (file, then etcd), applies the environment and validates the result with the one schema
 * (src/config.ts). Adapters: `adapters/file` (the YAML file; the default) and `adapters/etcd`
 * (keys under control.etcd.prefix). Conformance: test/ports/config-source.conformance.ts.
 */

export type ConfigTree = Record<string, unknown>;

export interface ConfigLayer {
  readonly tree: ConfigTree;
  /**
   * Increases with every change the source saw: etcd's store revision for etcd, a change counter
   * for a file. Equal revisions mean the same content.
   */
  readonly revision: number;
}

export interface ConfigSourceListener {
  /** A new layer (changes may be coalesced: the latest content is what counts). */
  onChange(layer: ConfigLayer): void;
  /**
   * The source holds content it cannot turn into a layer (a bad key, an oversized value, YAML that
   * does not parse) or lost its backend for a while; the last good layer stays in force.
   */
  onProblem(err: KapokError): void;
}

export interface ConfigSourceStatus {
  /** The backend answers (a file source: the file is readable). */
  readonly connected: boolean;
  /** Revision of the last layer delivered. */
  readonly revision: number;
  /** Times the source re-read everything after a watch broke or a probe found a missed change. */
  readonly resyncs: number;
  readonly detail?: string;
}

export interface ConfigSource {
  readonly kind: 'file' | 'etcd';
  /** The file path or the etcd prefix: for logs and status, never a secret. */
  readonly where: string;
  /** Reads the whole layer now. */
  read(): Promise<ConfigLayer>;
  /** Starts watching; only one listener. Changes after `read()`'s revision are delivered. */
  watch(listener: ConfigSourceListener): void;
  /** Re-reads now and delivers a change if the content differs (SIGHUP, the periodic probe). */
  refresh(): Promise<void>;
  status(): ConfigSourceStatus;
  close(): Promise<void>;
}

/** A config value in a source may be at most this large (one key of etcd, a whole file). */
export const MAX_CONFIG_VALUE_BYTES = 1024 * 1024;

const isObject = (v: unknown): v is ConfigTree => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `over` merged onto `base`: mappings merge key by key, anything else (lists, scalars, null)
 * replaces. Neither input is changed.
 */
export function mergeTrees(base: ConfigTree, over: ConfigTree): ConfigTree {
  const out: ConfigTree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    const cur = out[k];
    out[k] = isObject(cur) && isObject(v) ? mergeTrees(cur, v) : v;
  }
  return out;
}

/**
 * Splits a key relative to a source's prefix into config path segments (`gateway/limits` →
 * ['gateway', 'limits']). Refuses what cannot be a config path: empty segments (`a//b`, a trailing
 * `/`), `.` and `..`, and names that would reach an object's prototype.
 */
export function configPath(relative: string, fullKey: string): string[] {
  const parts = relative.split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..' || p === '__proto__' || p === 'constructor' || p === 'prototype')
      throw new KapokError(
        'KAPOK_CONTROL_BAD_KEY',
        `config key ${JSON.stringify(fullKey)}: ${p === '' ? 'empty path segment' : `segment ${JSON.stringify(p)} is not allowed`}; keys are config paths joined with "/" (gateway/limits)`,
      );
  }
  return parts;
}

/** Places `value` at `path` in `tree`, merging with what finer or coarser keys put there. */
export function placeAt(tree: ConfigTree, path: readonly string[], value: unknown): void {
  let cur = tree;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    // A list is walked by index (gateway/providers/0/apiKey), not replaced by a mapping.
    if (!isObject(next) && !Array.isArray(next)) cur[key] = {};
    cur = cur[key] as ConfigTree;
  }
  const last = path[path.length - 1] as string;
  const prev = cur[last];
  cur[last] = isObject(prev) && isObject(value) ? mergeTrees(prev, value) : value;
}
