/**
 * Replaces the value of the first `"model"` key in a JSON text with `name`, without parsing the
 * rest: upstream bytes pass through (an OpenAI-compatible server's answer or stream chunk) but carry
 * the model name the client asked for (gateway.exposeUpstreamModel). JSON strings cannot hold an
 * unescaped quote, so `"model"` followed by a colon is always a key; in chat, completion and
 * Responses payloads the first such key is the top-level one. A text without one is returned as is.
 */
export function renameModel(text: string, name: string): string {
  let from = 0;
  for (;;) {
    const k = text.indexOf('"model"', from);
    if (k === -1) return text;
    let i = k + 7;
    while (isSpace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 58 /* : */) {
      from = k + 7; // a string value "model", not a key
      continue;
    }
    i++;
    while (isSpace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 34 /* " */) return text; // null or another type: leave it
    let j = i + 1;
    for (; j < text.length; j++) {
      const ch = text.charCodeAt(j);
      if (ch === 92 /* \ */) j++;
      else if (ch === 34) break;
    }
    if (j >= text.length) return text;
    const current = text.slice(i + 1, j);
    const quoted = JSON.stringify(name);
    if (current === quoted.slice(1, -1)) return text;
    return text.slice(0, i) + quoted + text.slice(j + 1);
  }
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}
