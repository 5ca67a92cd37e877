import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelConfig } from '../config.js';

/** Reading the repository's folders: <root>/<model>/<version>/model.onnx. */

export const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const VERSION = /^[1-9][0-9]{0,17}$/;

/** Sorts version names highest first (they may exceed 2^53). */
export const byVersionDesc = (a: string, b: string) =>
  BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0;

/** Folders of `root` that may be models; throws when `root` cannot be read. */
export async function listModels(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && MODEL_NAME.test(e.name)).map((e) => e.name);
}

/** Version → "size:mtime" of its model.onnx. */
export async function listVersions(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let entries: string[];
  try {
    entries = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && VERSION.test(e.name))
      .map((e) => e.name);
  } catch {
    return out;
  }
  for (const v of entries) {
    try {
      const s = await stat(join(dir, v, 'model.onnx'));
      if (s.isFile()) out.set(v, `${s.size}:${s.mtimeMs}`);
    } catch {
      // a version folder without model.onnx (yet) is not a version
    }
  }
  return out;
}

/** The versions the model's version policy serves, highest first. */
export function wantedVersions(cfg: ModelConfig, versions: string[]): string[] {
  const sorted = versions.sort(byVersionDesc);
  const p = cfg.versionPolicy;
  if (p === 'all' || 'all' in p) return sorted;
  if ('latest' in p) return sorted.slice(0, p.latest);
  return sorted.filter((v) => p.specific.includes(v));
}
