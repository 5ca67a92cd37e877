import { isDeepStrictEqual } from 'node:util';

type Tree = Record<string, unknown>;
const isObject = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The dotted paths where `a` and `b` differ, down to leaves (a list is one leaf: `gateway.providers`).
 * Paths only, never values: they are logged and shown, and a value may be a secret.
 */
export function diffPaths(a: unknown, b: unknown, base = ''): string[] {
  if (isDeepStrictEqual(a, b)) return [];
  if (!isObject(a) || !isObject(b)) return [base || '(all)'];
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
    out.push(...diffPaths(a[k], b[k], base ? `${base}.${k}` : k));
  return out;
}

/** `next` with the values at `paths` (dotted, relative) taken from `prev`: what stays in force until a restart. */
export function keepPaths<T>(next: T, prev: T, paths: readonly string[]): T {
  if (paths.length === 0) return next;
  const out = structuredClone(next) as Tree;
  for (const path of paths) {
    const parts = path.split('.');
    let from: unknown = prev;
    let to: Tree = out;
    for (const [i, p] of parts.entries()) {
      from = isObject(from) ? from[p] : undefined;
      if (i === parts.length - 1) {
        if (from === undefined) delete to[p];
        else to[p] = structuredClone(from);
      } else {
        if (!isObject(to[p])) to[p] = {};
        to = to[p] as Tree;
      }
    }
  }
  return out as T;
}
