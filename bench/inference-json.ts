import { checkDepth, parseBodyBytes, parseInferBody } from '../src/inference/protocol/rest-body.js';
import type { TensorMeta } from '../src/inference/tensors/datatypes.js';

/**
 * REST infer body parsing in one process: our scanner (json-scan.ts, via parseBodyBytes) against
 * JSON.parse + checks + copy (the path before it), alternating rounds, CPU time per body
 * (process.cpuUsage). Bodies as the inference bench sends them: the MLP's 16 floats and PaddleOCR
 * cls's 3×48×192. Run: node --import tsx bench/inference-json.ts [rounds]
 */

const ROUNDS = Number(process.argv[2] ?? 7);
const body = (shape: number[], f: (i: number) => number) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', datatype: 'FP32', shape, data: Array.from({ length: n }, (_, i) => f(i)) }],
    }),
  );
};
const cases: Array<[string, Buffer, TensorMeta[], number]> = [
  [
    'mlp 16',
    body([1, 16], (i) => Math.sin(i) * 2),
    [{ name: 'x', datatype: 'FP32', shape: [-1, 16] }],
    20_000,
  ],
  [
    'cls 3x48x192',
    body([1, 3, 48, 192], (i) => Math.sin(i) * 0.5),
    [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }],
    30,
  ],
];
const plain = (b: Buffer, inputs: TensorMeta[]) => {
  const text = b.toString('utf8');
  const parsed = JSON.parse(text);
  checkDepth(text, parsed);
  return parseInferBody(parsed, inputs, 64);
};
const scan = (b: Buffer, inputs: TensorMeta[]) => parseBodyBytes(b, inputs, 64, undefined);
const cpuUs = (f: () => void, n: number) => {
  const c = process.cpuUsage();
  for (let i = 0; i < n; i++) f();
  const d = process.cpuUsage(c);
  return (d.user + d.system) / n;
};
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const [name, b, inputs, n] of cases) {
  const a: number[] = [];
  const s: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(cpuUs(() => plain(b, inputs), n));
    s.push(cpuUs(() => scan(b, inputs), n));
  }
  const ma = med(a);
  const ms = med(s);
  console.log(
    `${name} (${b.length} B): JSON.parse path ${ma.toFixed(2)} µs, scanner ${ms.toFixed(2)} µs, ratio ${(ma / ms).toFixed(2)}x (CPU time per body, median of ${ROUNDS} alternating rounds)`,
  );
}
