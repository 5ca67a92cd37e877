/**
 * Label selectors as kube-apiserver parses them (equality and set-based):
 * `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-joined (AND).
 */

export type Labels = Readonly<Record<string, string>> | undefined;
type Requirement = (labels: Record<string, string>) => boolean;

export class SelectorError extends Error {}

/** Splits on commas outside parentheses. */
function terms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter(Boolean);
}

function requirement(t: string): Requirement {
  let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t);
  if (m) {
    const [, key, op, list] = m as unknown as [string, string, string, string];
    const values = new Set(list.split(',').map((v) => v.trim()));
    return op === 'in'
      ? (l) => key in l && values.has(l[key] as string)
      : (l) => !(key in l) || !values.has(l[key] as string);
  }
  m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(t);
  if (m) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  m = /^(!?)([\w./-]+)$/.exec(t);
  if (m) {
    const [, not, key] = m as unknown as [string, string, string];
    return not ? (l) => !(key in l) : (l) => key in l;
  }
  throw new SelectorError(`unable to parse requirement: ${JSON.stringify(t)}`);
}

/** A matcher for the selector (empty: everything). */
export function parseLabelSelector(s: string | null | undefined): (labels: Labels) => boolean {
  const reqs = terms(s ?? '').map(requirement);
  return (labels) => reqs.every((r) => r({ ...(labels ?? {}) }));
}

/** Field selectors on the fields the test server indexes: metadata.name, metadata.namespace, spec.nodeName, status.phase. */
export function parseFieldSelector(s: string | null | undefined): (obj: Record<string, unknown>) => boolean {
  const reqs = terms(s ?? '').map((t) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (!m) throw new SelectorError(`unable to parse field selector: ${JSON.stringify(t)}`);
    const [, path, op, value] = m as unknown as [string, string, string, string];
    if (!['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase'].includes(path))
      throw new SelectorError(`field label not supported: ${path}`);
    const read = (o: Record<string, unknown>) =>
      String(path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], o) ?? '');
    return op === '!='
      ? (o: Record<string, unknown>) => read(o) !== value
      : (o: Record<string, unknown>) => read(o) === value;
  });
  return (obj) => reqs.every((r) => r(obj));
}
