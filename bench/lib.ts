import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import { stringify } from 'yaml';

export const root = new URL('..', import.meta.url).pathname;
/** The Kapok under test: this checkout's build, or another's (KAPOK_BENCH_KAPOK_BIN) for before/after runs. */
export const kapokBin = process.env.KAPOK_BENCH_KAPOK_BIN ?? join(root, 'dist/bundle/main.js');

/** Facts every result carries so numbers from different machines are never compared blindly. */
export function machine() {
  return {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kapok-bench-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** KAPOK_* variables that turn every capability off (each is on by default). */
export const CAPABILITIES_OFF: Readonly<Record<string, string>> = Object.fromEntries(
  ['GATEWAY', 'INFERENCE', 'EDGE', 'V2X', 'GM', 'CONSOLE'].map((c) => [`KAPOK_${c}__ENABLED`, 'false']),
);

/** Config sections turning every capability off (each is on by default). */
export const CAPABILITIES_OFF_CONFIG: Readonly<Record<string, { enabled: false }>> = Object.fromEntries(
  ['gateway', 'inference', 'edge', 'v2x', 'gm', 'console'].map((c) => [c, { enabled: false }]),
);

/**
 * Writes `<dir>/kapok.yaml` for a benchmarked `kapok up`: data under `<dir>/data`, HTTP on
 * 127.0.0.1:httpPort, warn-level logs without request lines, no capability but the given sections. Returns its path.
 */
export function writeBenchConfig(dir: string, httpPort: number, sections: Record<string, unknown>): string {
  const file = join(dir, 'kapok.yaml');
  writeFileSync(
    file,
    stringify({
      dataDir: join(dir, 'data'),
      http: { host: '127.0.0.1', port: httpPort },
      log: { level: 'warn', requests: false },
      // Every capability is on by default: a benchmark runs only the ones it names.
      ...CAPABILITIES_OFF_CONFIG,
      ...sections,
    }),
  );
  return file;
}

/**
 * KAPOK_BENCH_NODE_ARGS split into arguments: Node.js or V8 flags a bench puts before Kapok's entry
 * point (the launchers' heap flags, `--cpu-prof --cpu-prof-dir=DIR`, ...); none when unset.
 */
export function kapokNodeArgs(): string[] {
  return (process.env.KAPOK_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

/**
 * The gateway section every gateway bench runs Kapok with: one OpenAI-style mock upstream behind
 * model `qwen`, API-key auth (keys made with createBenchKey), quotas so high they never refuse.
 */
export function benchGateway(mockPort: number, adminToken: string) {
  return {
    enabled: true,
    providers: [{ name: 'mock', type: 'openai', baseUrl: `http://127.0.0.1:${mockPort}/v1` }],
    models: [{ name: 'qwen', targets: [{ provider: 'mock', model: 'm' }] }],
    auth: { adminToken },
    limits: { default: { rpm: 1_000_000_000, tpm: 1_000_000_000 } },
  };
}

/** Creates a gateway API key through the admin API of a benchmarked Kapok; throws naming the bench on a refusal. */
export async function createBenchKey(origin: string, adminToken: string, bench: string): Promise<string> {
  const res = await fetch(`${origin}/api/gateway/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench' }),
  });
  if (res.status !== 200 && res.status !== 201)
    throw new Error(`${bench} bench: creating an API key answered ${res.status}`);
  return ((await res.json()) as { key: string }).key;
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Polls GET url until 200; resolves with ms since `since` (hrtime ms). */
export async function waitFor200(
  url: string,
  since: number,
  child: ChildProcess,
  limitMs = 15_000,
): Promise<number> {
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`process exited with ${child.exitCode} before ${url} answered`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - since;
    } catch {
      // not listening yet
    }
    if (performance.now() - since > limitMs)
      throw new Error(`${url} did not answer 200 within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export function spawnProcess(cmd: string[], env: Record<string, string>): ChildProcess {
  const [bin, ...args] = cmd as [string, ...string[]];
  return spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
}

export function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

export function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
  const r = (n: number) => Math.round(n * 10) / 10;
  return {
    n: s.length,
    min: r(s[0] as number),
    median: r(q(0.5)),
    p90: r(q(0.9)),
    max: r(s[s.length - 1] as number),
  };
}

/** A bare node:http server answering the same /healthz JSON: the floor Kapok is measured against. */
export const BASELINE_SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  const body = JSON.stringify({ status: 'ok', timestamp: new Date().toISOString().slice(0, 19) + 'Z', region: 'guangzhou' });
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

/**
 * Request outcomes of a load loop: answers with a non-2xx status and transport errors (refused,
 * reset, timed out) are counted apart from the answered requests, never folded into latency.
 */
export interface Outcomes {
  non2xx: number;
  transportErrors: number;
}

export const noErrors = (): Outcomes => ({ non2xx: 0, transportErrors: 0 });

export function addOutcomes(into: Outcomes, from: Outcomes): Outcomes {
  into.non2xx += from.non2xx;
  into.transportErrors += from.transportErrors;
  return into;
}

export const errorCount = (o: Outcomes) => o.non2xx + o.transportErrors;

/**
 * A verdict that cannot pass on errors: `met` is false when any loop behind it had more errors
 * than `maxFraction` of its requests (0 unless stated), and `why` says which and how many.
 */
export function verdict(
  checks: Record<string, boolean>,
  loops: Record<string, Outcomes & { requests: number }>,
  maxFraction = 0,
): { met: Record<string, boolean>; errorsOk: boolean; why: string[] } {
  const why: string[] = [];
  for (const [name, o] of Object.entries(loops)) {
    const n = errorCount(o);
    if (n > maxFraction * o.requests)
      why.push(
        `${name}: ${o.non2xx} non-2xx + ${o.transportErrors} transport errors in ${o.requests} requests` +
          (maxFraction > 0 ? ` (over the ${maxFraction * 100}% allowed)` : ''),
      );
  }
  const errorsOk = why.length === 0;
  for (const [name, ok] of Object.entries(checks)) if (!ok) why.push(`${name}: target missed`);
  const met = Object.fromEntries(Object.entries(checks).map(([k, ok]) => [k, ok && errorsOk]));
  return { met, errorsOk, why };
}

/** The CPUs a process may run on (Linux /proc), to print the pinning a benchmark actually got. */
export function cpusOf(pid: number): string {
  try {
    const m = /Cpus_allowed_list:\s+(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ?? 'unknown';
  } catch {
    return 'exited';
  }
}

/** Prints and returns who runs where, e.g. { kapok: '0', loadGenerator: '1' }. */
export function reportPinning(bench: string, parties: Record<string, number | undefined>) {
  const out = Object.fromEntries(
    Object.entries(parties).map(([k, pid]) => [k, pid === undefined ? 'not started' : `cpus ${cpusOf(pid)}`]),
  );
  process.stderr.write(
    `  ${bench} pinning: ${Object.entries(out)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n`,
  );
  return out;
}

/** Says loudly that a figure has no same-run baseline, and why; returns the reason for the JSON. */
export function noBaseline(figure: string, reason: string): string {
  const line = `no baseline: ${figure}: ${reason}`;
  process.stderr.write(`  ${line}\n`);
  return line;
}

/**
 * Cumulative Prometheus histogram buckets of `name` from a /metrics text, summed over label sets,
 * keyed by upper bound in the metric's unit. `le="+Inf"` is +Infinity (Number('+Inf') is NaN,
 * which would file the +Inf bucket of every label set under its own NaN key).
 */
export function histogramBuckets(text: string, name: string): Map<number, number> {
  const out = new Map<number, number>();
  const prefix = `${name}_bucket{`;
  for (const l of text.split('\n')) {
    if (!l.startsWith(prefix)) continue;
    const m = /le="([^"]+)"\}?.*?\s(\S+)$/.exec(l);
    if (!m) continue;
    const le = leBound(m[1] as string);
    out.set(le, (out.get(le) ?? 0) + Number(m[2]));
  }
  return out;
}

export function leBound(le: string): number {
  if (le === '+Inf' || le === 'Inf' || le === '+inf') return Number.POSITIVE_INFINITY;
  const n = Number(le);
  if (Number.isNaN(n)) throw new Error(`histogram bucket bound le="${le}" is not a number`);
  return n;
}

export function diffBuckets(a: Map<number, number>, b: Map<number, number>): Map<number, number> {
  return new Map([...a].map(([k, v]) => [k, v - (b.get(k) ?? 0)]));
}

/**
 * Upper estimates of p50/p99 in ms from cumulative buckets in seconds: the first bucket bound
 * holding the quantile; null when it falls in +Inf (above every finite bound).
 */
export function bucketQuantiles(buckets: Map<number, number>) {
  const sorted = [...buckets].sort((x, y) => x[0] - y[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  const q = (p: number) => {
    const hit = sorted.find(([, c]) => c >= p * total);
    return hit && Number.isFinite(hit[0]) ? hit[0] * 1000 : null;
  };
  return { count: total, p50MsAtMost: total ? q(0.5) : null, p99MsAtMost: total ? q(0.99) : null };
}

/**
 * QoS 1 publishes of messages 0..n-1 spread over connected clients, each keeping at most `window`
 * unacknowledged; a publish that errors, or is in flight when its client closes, counts as an error.
 * The clients are ended afterwards. Shared by the edge and MQTT 5 benchmarks.
 */
export async function publishWindowed(
  cs: MqttClient[],
  n: number,
  window: number,
  topic: (i: number) => string,
  payload: (i: number) => string,
  opts: IClientPublishOptions = { qos: 1 },
): Promise<{ errors: number }> {
  let next = 0;
  let errors = 0;
  await Promise.all(
    cs.map(
      (c) =>
        new Promise<void>((resolve) => {
          let inflight = 0;
          let closed = false;
          c.on('error', () => {});
          c.once('close', () => {
            closed = true;
            errors += inflight;
            resolve();
          });
          const pump = () => {
            while (!closed && inflight < window && next < n) {
              const i = next++;
              inflight++;
              c.publish(topic(i), payload(i), opts, (err) => {
                if (closed) return;
                if (err) errors++;
                inflight--;
                if (next >= n && inflight === 0) resolve();
                else pump();
              });
            }
          };
          pump();
        }),
    ),
  );
  await Promise.all(cs.map((c) => c.endAsync().catch(() => {})));
  return { errors };
}

/**
 * An open-loop generator's wait for its next send: sleeps (a timer, ≥ 1 ms in Node) until the next
 * request is due, instead of polling with setImmediate. The poll kept the generator's core busy,
 * which on a 2-core box is the core the mock upstream shares with it: the upstream's wake-ups then
 * waited for the scheduler, a tail that was the bench's own. Latency is still counted from each
 * request's scheduled time, so a late wake-up is measured, not hidden.
 */
export function sleepUntilDue(start: number, scheduled: number, rate: number): Promise<void> {
  const wait = start + (scheduled * 1000) / rate - performance.now();
  return new Promise((r) => setTimeout(r, Math.max(0, wait)));
}

/**
 * The fast OpenAI-style mock upstream the gateway tools share (`node -e`, PORT from the environment):
 * every POST answers one small chat completion with usage 9 + 1 tokens.
 */
export const CHAT_MOCK = `require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => {
  const b = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
  res.end(b); }); }).listen(Number(process.env.PORT), '127.0.0.1');`;

/**
 * The same-run Node floor: a bare node:http reverse proxy forwarding to the same mock upstream with
 * the client Kapok uses (an undici Pool, keep-alive), no auth, quotas, routing or usage. Pinned to
 * Kapok's core. Kapok over it is what Kapok adds; it over the direct upstream is what one Node hop
 * costs on this machine (the part of the tail and of the throughput gap Kapok cannot remove).
 */
export const NODE_PROXY = `
const http = require('node:http');
const { Pool } = require(process.env.UNDICI);
const pool = new Pool(process.env.UPSTREAM, { connections: 256, keepAliveTimeout: 30000 });
const headers = { 'content-type': 'application/json' };
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    pool.request({ path: req.url, method: 'POST', headers, body: Buffer.concat(chunks) })
      .then(async (up) => {
        const text = await up.body.text();
        res.writeHead(up.statusCode, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      })
      .catch(() => { res.writeHead(502); res.end(); });
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
`;
