import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ConfigTree } from '../ports/config-source.js';

/**
 * The last good etcd layer, cached in dataDir so that a Kapok can start while etcd is unreachable
 * (docs/control.md#etcd-unreachable-at-start). Written after every start and accepted change on etcd;
 * it holds the layer as etcd had it (encrypted values stay encrypted), file mode 0600.
 */
export interface LastGood {
  prefix: string;
  revision: number;
  savedAt: string;
  tree: ConfigTree;
}

export const lastGoodFile = (dataDir: string): string => join(dataDir, 'control', 'etcd-last-good.json');

export function writeLastGood(file: string, prefix: string, revision: number, tree: ConfigTree): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const doc: LastGood = { prefix, revision, savedAt: new Date().toISOString(), tree };
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(doc), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The cached layer for this prefix, or null (none, another prefix's, or unreadable: never half-trusted). */
export function readLastGood(file: string, prefix: string): LastGood | null {
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Partial<LastGood>;
    if (doc.prefix !== prefix || typeof doc.revision !== 'number' || typeof doc.savedAt !== 'string')
      return null;
    if (typeof doc.tree !== 'object' || doc.tree === null || Array.isArray(doc.tree)) return null;
    return doc as LastGood;
  } catch {
    return null;
  }
}
