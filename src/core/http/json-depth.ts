/**
 * A bound on the nesting of JSON bodies. V8's JSON.parse takes a 100k-deep document happily; then
 * anything recursive that touches it (serialising, validating) overflows the stack and the client
 * gets a 500. Checked after parsing, and only when the text has more openers than the limit (a
 * few native indexOf calls): most bodies pay nothing, big nested ones one walk (bench/json-depth.ts).
 */

/** The deepest JSON bodies nest in practice (tool JSON schemas, tensors) stay far below this. */
export const MAX_JSON_DEPTH = 128;

/** True when `value`, parsed from `text`, nests arrays and objects deeper than `max`. */
export function jsonTooDeep(text: string, value: unknown, max = MAX_JSON_DEPTH): boolean {
  return !fewOpeners(text, max) && walkTooDeep(value, max);
}

/** At most `max` '[' and '{' in all: the document cannot nest deeper than that. */
function fewOpeners(text: string, max: number): boolean {
  let n = 0;
  for (const ch of ['[', '{']) {
    let i = text.indexOf(ch);
    while (i !== -1) {
      if (++n > max) return false;
      i = text.indexOf(ch, i + 1);
    }
  }
  return true;
}

/** Iterative (a recursive walk would overflow on exactly the input it looks for). */
function walkTooDeep(root: unknown, max: number): boolean {
  const stack: unknown[] = [root];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const v = stack.pop() as object;
    const d = depths.pop() as number;
    if (d > max) return true;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const c of children)
      if (typeof c === 'object' && c !== null) {
        stack.push(c);
        depths.push(d + 1);
      }
  }
  return false;
}
