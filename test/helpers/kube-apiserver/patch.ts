/**
 * The patch formats kube-apiserver accepts for custom resources: JSON merge patch (RFC 7386) and
 * JSON patch (RFC 6902). Strategic merge patch is refused for custom resources there (415), and so here.
 */

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386: objects merge, null deletes, anything else replaces (arrays whole). */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class PatchError extends Error {}

const unescapeToken = (s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~');

function parsePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(p)}`);
  return p.slice(1).split('/').map(unescapeToken);
}

function parentOf(doc: Json, path: string[]): { parent: Record<string, Json> | Json[]; key: string } {
  let cur = doc;
  for (const k of path.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(k)];
    else if (isObject(cur)) cur = cur[k];
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`path /${path.join('/')} does not exist`);
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw new PatchError(`path /${path.join('/')} does not exist`);
  return { parent: cur, key: path.at(-1) as string };
}

function get(doc: Json, path: string[]): Json {
  let cur = doc;
  for (const k of path) {
    if (Array.isArray(cur)) cur = cur[Number(k)];
    else if (isObject(cur)) cur = cur[k];
    else return undefined;
  }
  return cur;
}

function remove(doc: Json, path: string[]): Json {
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!(i >= 0 && i < parent.length)) throw new PatchError(`index ${key} out of range`);
    return parent.splice(i, 1)[0];
  }
  if (!(key in parent)) throw new PatchError(`path /${path.join('/')} does not exist`);
  const v = parent[key];
  delete parent[key];
  return v;
}

function add(doc: Json, path: string[], value: Json): Json {
  if (path.length === 0) return value;
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!(i >= 0 && i <= parent.length)) throw new PatchError(`index ${key} out of range`);
    parent.splice(i, 0, value);
  } else parent[key] = value;
  return doc;
}

/** RFC 6902 on a copy: add, remove, replace, move, copy, test. */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch is an array of operations');
  let doc = structuredClone(target);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string')
      throw new PatchError('each operation needs op and path');
    const path = parsePointer(raw.path);
    switch (raw.op) {
      case 'add':
        doc = add(doc, path, structuredClone(raw.value));
        break;
      case 'remove':
        remove(doc, path);
        break;
      case 'replace':
        if (path.length === 0) doc = structuredClone(raw.value);
        else {
          remove(doc, path);
          doc = add(doc, path, structuredClone(raw.value));
        }
        break;
      case 'move':
      case 'copy': {
        const from = parsePointer(String(raw.from));
        const v = raw.op === 'move' ? remove(doc, from) : structuredClone(get(doc, from));
        if (v === undefined) throw new PatchError(`from ${String(raw.from)} does not exist`);
        doc = add(doc, path, v);
        break;
      }
      case 'test':
        if (JSON.stringify(get(doc, path)) !== JSON.stringify(raw.value))
          throw new PatchError(`test failed at ${raw.path}`);
        break;
      default:
        throw new PatchError(`unknown op ${raw.op}`);
    }
  }
  return doc;
}
