import ort from 'onnxruntime-node';
import { mlpModel } from '../scripts/onnx-models.js';

/**
 * ONNX Runtime's intra-op spinning, in one process (no Kapok): the wide MLP of bench/inference.ts
 * run by sessions with ORT's default (threads spin-wait between runs), with spinning stopped only
 * between runs (session.force_spinning_stop) and with it off (session.intra_op.allow_spinning = 0,
 * Kapok's default since issue 24), each with one and two intra-op threads. Per run p50/p99 of one
 * row and p50 of 16 rows back to back, then the process CPU over 300 runs of 16 rows 1 ms apart
 * (what an idle pool costs). Run: node --import tsx bench/inference-spin.ts [rounds]
 */

const MODES: Record<string, Record<string, unknown>> = {
  spinning: {},
  stopBetweenRuns: { session: { force_spinning_stop: '1' } },
  noSpinning: { session: { intra_op: { allow_spinning: '0' } } },
};

async function main() {
  const model = mlpModel({ inDim: 256, hidden: 1024, outDim: 16 });
  const x1 = new ort.Tensor('float32', new Float32Array(256).fill(0.1), [1, 256]);
  const x16 = new ort.Tensor('float32', new Float32Array(16 * 256).fill(0.1), [16, 256]);
  const rounds = Number(process.argv[2] ?? 2);
  const us = (ms: number) => Math.round(ms * 1000);
  for (let round = 0; round < rounds; round++)
    for (const [mode, extra] of Object.entries(MODES))
      for (const threads of [1, 2]) {
        const s = await ort.InferenceSession.create(model, {
          intraOpNumThreads: threads,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: 'all',
          extra,
        });
        for (let i = 0; i < 200; i++) await s.run({ x: x1 });
        const one: number[] = [];
        for (let i = 0; i < 2000; i++) {
          const t = performance.now();
          await s.run({ x: x1 });
          one.push(performance.now() - t);
        }
        const sixteen: number[] = [];
        for (let i = 0; i < 1000; i++) {
          const t = performance.now();
          await s.run({ x: x16 });
          sixteen.push(performance.now() - t);
        }
        one.sort((a, b) => a - b);
        sixteen.sort((a, b) => a - b);
        const c0 = process.cpuUsage();
        for (let i = 0; i < 300; i++) {
          await s.run({ x: x16 });
          await new Promise((r) => setTimeout(r, 1));
        }
        const c = process.cpuUsage(c0);
        process.stdout.write(
          `${JSON.stringify({
            round,
            mode,
            threads,
            oneRowP50us: us(one[1000] as number),
            oneRowP99us: us(one[1980] as number),
            sixteenRowsP50us: us(sixteen[500] as number),
            cpuMsOver300Gapped: Math.round((c.user + c.system) / 1000),
          })}\n`,
        );
        await s.release();
      }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
