import { jsonTooDeep } from '../src/core/http/json-depth.js';

/**
 * What refusing deeply nested JSON costs: JSON.parse alone (the baseline, same run) against
 * JSON.parse + jsonTooDeep, on the bodies Kapok sees: a chat completion (strings, few openers) and
 * an inference request (4096 nested rows of 16 numbers). Printed as ratios to the baseline.
 */
function time(fn: () => void, minMs = 500): number {
  for (let i = 0; i < 10; i++) fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    fn();
    n++;
  }
  return (performance.now() - t0) / n;
}

const chat = JSON.stringify({
  model: 'qwen',
  messages: Array.from({ length: 20 }, (_, i) => ({
    role: i % 2 ? 'assistant' : 'user',
    content: 'lorem ipsum dolor sit amet, "quoted" text '.repeat(20),
  })),
  tools: [
    {
      type: 'function',
      function: {
        name: 'f',
        parameters: { type: 'object', properties: { a: { type: 'array', items: { type: 'string' } } } },
      },
    },
  ],
});
const rows = Array.from({ length: 4096 }, () => Array.from({ length: 16 }, () => Math.random()));
const infer = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [4096, 16], data: rows }] });

export async function jsonDepth(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [name, text] of [
    ['chat', chat],
    ['inference', infer],
  ] as const) {
    const parse = time(() => JSON.parse(text));
    const checked = time(() => jsonTooDeep(text, JSON.parse(text)));
    out[name] = {
      bytes: text.length,
      parseMs: +parse.toFixed(4),
      checkedRatio: +(checked / parse).toFixed(3),
    };
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await jsonDepth()));
