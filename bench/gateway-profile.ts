/**
 * Where the gateway's time goes, per request, and how builds or V8 flags compare on a busy machine:
 * Kapok (gateway bench setup: API key auth + memory quotas + routing + usage records into SQLite, a
 * fast mock upstream) takes phases of open-loop load at fixed rates and one closed loop. Per phase:
 * Kapok's CPU time per request (/proc utime+stime, so other processes' load does not count), its
 * scavenges and mark-compacts with their summed pauses (--trace-gc), its event-loop delay p99/max
 * (perf_hooks.monitorEventLoopDelay in Kapok, through a preload), client p50/p99 and RSS at the end.
 * Several builds or flag sets run in alternating rounds, a fresh process each, so load drift hits
 * every variant alike. Not part of `npm run bench`; run it alone:
 *
 *   npm run build && node --import tsx bench/gateway-profile.ts
 *   KAPOK_BENCH_PROFILE_VARIANTS='base=/work/base/dist/bundle/main.js;new=dist/bundle/main.js' node --import tsx bench/gateway-profile.ts
 *   KAPOK_BENCH_PROFILE_VARIANTS='plain=dist/bundle/main.js;flags=dist/bundle/main.js --max-semi-space-size=4' ...
 *   KAPOK_BENCH_PROFILE_ROUNDS=3 KAPOK_BENCH_PROFILE_SECONDS=4 KAPOK_BENCH_PROFILE_RATES=1000,5000 KAPOK_BENCH_AUDIT=1 ...
 *   KAPOK_BENCH_PROFILE_CPU_PROF=/tmp/prof  (adds --cpu-prof --cpu-prof-dir=/tmp/prof to every Kapok)
 *   KAPOK_BENCH_PROFILE_TAIL=1  (per-request timestamps: what the open-loop p99 requests coincide with)
 *   KAPOK_BENCH_PROFILE_IDLE_S=10  (Kapok idle that long after the warm-up, before the first phase)
 *
 * Tail mode: each open-loop request keeps its scheduled time, the time the generator got round to
 * sending it (lateness = the generator's own delay) and its end. Kapok reports, in epoch ms, every
 * GC (PerformanceObserver 'gc'), every main-thread stall (a 1 ms interval that fired > 3 ms late)
 * and every main-thread SQLite call of 50 µs or more (better-sqlite3, timed in the preload; the
 * usage writes among them); the generator its own GCs and stalls. Per phase: the requests at or
 * above the p99 latency and the share of them that overlap each kind of event, against the share
 * of all requests that do (a cause is a kind much more common among the slow than among all).
 *
 * Every phase, tail mode or not, also carries Kapok's CPU per thread (/proc/<pid>/task: the main
 * thread, then the others by id: V8's GC and compiler workers, the SQLite checkpoint worker, libuv)
 * and, for the main threads of Kapok, the mock and the generator, the time on a CPU and the time
 * runnable but kept off one (run-queue wait, /proc/<pid>/schedstat: another process had the core).
 *
 * Baseline: the other variants of the same run (no absolute target here; `npm run bench -- gateway`
 * holds the targets).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { Pool } from 'undici';
import {
  benchGateway,
  CHAT_MOCK,
  createBenchKey,
  freePort,
  root,
  rssBytes,
  sleepUntilDue,
  stop,
  tempDir,
  waitFor200,
  writeBenchConfig,
} from './lib.js';

const ADMIN = 'bench-admin-token-0123456789';
const seconds = Number(process.env.KAPOK_BENCH_PROFILE_SECONDS ?? 4);
const rounds = Number(process.env.KAPOK_BENCH_PROFILE_ROUNDS ?? 2);
const rates = (process.env.KAPOK_BENCH_PROFILE_RATES ?? '1000,5000').split(',').map(Number);
const closed = Number(process.env.KAPOK_BENCH_PROFILE_CLOSED_SECONDS ?? seconds);
const cpuProf = process.env.KAPOK_BENCH_PROFILE_CPU_PROF;
const tail = process.env.KAPOK_BENCH_PROFILE_TAIL === '1';
const variants = (process.env.KAPOK_BENCH_PROFILE_VARIANTS ?? `new=${join(root, 'dist/bundle/main.js')}`)
  .split(';')
  .map((v) => {
    const at = v.indexOf('=');
    const name = v.slice(0, at);
    const rest = v.slice(at + 1); // flags carry '=' too
    const [bin, ...args] = rest.trim().split(/\s+/) as [string, ...string[]];
    return { name, bin, args };
  });

/** Preloaded into Kapok: SIGUSR2 prints the event-loop delay since the last one, then resets it. */
const PRELOAD = `
import { monitorEventLoopDelay } from 'node:perf_hooks';
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
process.on('SIGUSR2', () => {
  const m = process.memoryUsage();
  const mb = (b) => Math.round(b / 2 ** 20);
  process.stderr.write('ELD ' + JSON.stringify({ p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6,
    heapTotalMB: mb(m.heapTotal), heapUsedMB: mb(m.heapUsed), externalMB: mb(m.external), rssMB: mb(m.rss) }) + '\\n');
  h.reset();
});
if (process.env.BENCH_PROFILE_TAIL === '1') {
  const { PerformanceObserver, performance } = await import('node:perf_hooks');
  const { createRequire } = await import('node:module');
  const o = performance.timeOrigin;
  const ev = (kind, at, ms) => process.stderr.write('EV ' + kind + ' ' + (o + at).toFixed(3) + ' ' + ms.toFixed(3) + '\\n');
  new PerformanceObserver((l) => { for (const e of l.getEntries()) ev(e.detail?.kind === 1 ? 'gc-minor' : 'gc-major', e.startTime, e.duration); })
    .observe({ entryTypes: ['gc'] });
  let last = performance.now();
  setInterval(() => { const t = performance.now(); if (t - last > 3) ev('stall', last, t - last); last = t; }, 1).unref();
  // Usage writes and every other main-thread SQLite call: better-sqlite3 (the bundle loads the same module), timed.
  try {
    const { resolve } = await import('node:path');
    const Db = createRequire(resolve(process.argv[1]))('better-sqlite3');
    const time = (proto, names) => { for (const n of names) { const f = proto[n]; proto[n] = function (...a) {
      const t = performance.now(); try { return f.apply(this, a); } finally { const ms = performance.now() - t; if (ms >= 0.05) ev('sqlite', t, ms); } }; } };
    const mem = new Db(':memory:');
    time(Object.getPrototypeOf(mem.prepare('select 1')), ['run', 'all', 'get']);
    mem.close();
    time(Db.prototype, ['exec', 'pragma']);
  } catch (e) { process.stderr.write('tail: better-sqlite3 not patched: ' + e.message + '\\n'); }
}
`;

const BODY = JSON.stringify({
  model: 'qwen',
  messages: [{ role: 'user', content: 'Say ok.' }],
  max_tokens: 16,
});

const cpuMs = (pid: number, tid?: string) => {
  const f =
    readFileSync(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`, 'utf8')
      .split(') ')[1]
      ?.split(' ') ?? [];
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, clock ticks of 10 ms
};

interface Gc {
  /** The longest pauses' --trace-gc lines (KAPOK_BENCH_PROFILE_GC_LINES=1). */
  worst?: string[];
  scavenges: number;
  scavengeMs: number;
  markCompacts: number;
  markCompactMs: number;
  maxPauseMs: number;
}

function gcOf(lines: string[]): Gc {
  const g: Gc = { scavenges: 0, scavengeMs: 0, markCompacts: 0, markCompactMs: 0, maxPauseMs: 0 };
  for (const l of lines) {
    // [pid:addr]   1234 ms: Scavenge 20.1 (24.0) -> 19.0 (24.0) MB, 1.23 / 0.00 ms ...
    const m = /(Scavenge|Mark-Compact|Mark-sweep)[^,]*MB, ([\d.]+) \/ [\d.]+ ms/.exec(l);
    if (!m) continue;
    const ms = Number(m[2]);
    if (m[1] === 'Scavenge') {
      g.scavenges++;
      g.scavengeMs += ms;
    } else {
      g.markCompacts++;
      g.markCompactMs += ms;
    }
    g.maxPauseMs = Math.max(g.maxPauseMs, ms);
  }
  if (process.env.KAPOK_BENCH_PROFILE_GC_LINES === '1')
    g.worst = lines
      .map(
        (l) =>
          [
            Number(/MB, ([\d.]+) \//.exec(l)?.[1] ?? 0),
            l.replace(/^\[[^\]]*\]\s*/, '').slice(0, 160),
          ] as const,
      )
      .sort((a, b) => b[0] - a[0])
      .slice(0, 3)
      .map((x) => x[1]);
  g.scavengeMs = r2(g.scavengeMs);
  g.markCompactMs = r2(g.markCompactMs);
  return g;
}

const r2 = (n: number) => Math.round(n * 100) / 100;
const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;

/** Tail mode: one open-loop request's scheduled, sent and end times (epoch ms). */
interface Req {
  at: number;
  sent: number;
  end: number;
}
interface Ev {
  kind: string;
  start: number;
  ms: number;
}
/** Tail mode: this generator's own GCs and stalls, and Kapok's events, since the phase began. */
const genEvents: Ev[] = [];
let kapokEvents: Ev[] = [];
const epoch = (t: number) => performance.timeOrigin + t;
if (tail) {
  new PerformanceObserver((l) => {
    for (const e of l.getEntries())
      genEvents.push({ kind: 'generator-gc', start: epoch(e.startTime), ms: e.duration });
  }).observe({ entryTypes: ['gc'] });
  let last = performance.now();
  setInterval(() => {
    const t = performance.now();
    if (t - last > 3) genEvents.push({ kind: 'generator-stall', start: epoch(last), ms: t - last });
    last = t;
  }, 1).unref();
}

/**
 * What the requests at or above the p99 latency coincide with: per kind of event, the share of slow
 * requests whose [scheduled, end] window overlaps one, against the share of all requests that do.
 * "generator-late": the generator sent it more than 1 ms after its scheduled time.
 */
function tailOf(reqs: Req[], events: Ev[]) {
  if (!reqs.length) return null;
  const lat = reqs.map((r) => r.end - r.at).sort((a, b) => a - b);
  const p99 = pct(lat, 0.99);
  const kinds = [...new Set(events.map((e) => e.kind)), 'generator-late', 'none'];
  const sorted = [...events].sort((a, b) => a.start - b.start);
  const hits = (r: Req) => {
    const out = new Set<string>();
    if (r.sent - r.at > 1) out.add('generator-late');
    for (const e of sorted) {
      if (e.start >= r.end) break;
      if (e.start + e.ms > r.at) out.add(e.kind);
    }
    if (!out.size) out.add('none');
    return out;
  };
  const all = reqs.map((r) => ({ r, ms: r.end - r.at, h: hits(r) }));
  const slow = all.filter((x) => x.ms >= p99);
  const share = (xs: typeof all, k: string) => r2((xs.filter((x) => x.h.has(k)).length / xs.length) * 100);
  const events_: Record<string, { count: number; totalMs: number; maxMs: number }> = {};
  for (const e of events) {
    const x = events_[e.kind] ?? { count: 0, totalMs: 0, maxMs: 0 };
    events_[e.kind] = x;
    x.count++;
    x.totalMs = r2(x.totalMs + e.ms);
    x.maxMs = r2(Math.max(x.maxMs, e.ms));
  }
  const t0 = reqs[0]?.at ?? 0;
  return {
    p99Ms: r2(p99),
    slowRequests: slow.length,
    overlapPercent: Object.fromEntries(kinds.map((k) => [k, { slow: share(slow, k), all: share(all, k) }])),
    events: events_,
    worst: all
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 8)
      .map((x) => ({
        atMs: Math.round(x.r.at - t0),
        latencyMs: r2(x.ms),
        generatorLateMs: r2(x.r.sent - x.r.at),
        with: [...x.h],
      })),
  };
}

/** A process's main thread: ms on a CPU and ms runnable but waiting for one (/proc/<pid>/schedstat). */
function sched(pid: number): { runMs: number; waitMs: number } {
  const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { runMs: (run ?? 0) / 1e6, waitMs: (wait ?? 0) / 1e6 };
}

/**
 * Over a phase, for Kapok, the mock upstream and this generator: main-thread ms on a CPU and ms
 * runnable but kept off one (the run-queue wait: another process had the core). A tail that is
 * scheduling shows here, not in any of Kapok's events.
 */
function schedAll(pids: Record<string, number>) {
  const out: Record<string, { runMs: number; waitMs: number }> = {};
  for (const [name, pid] of Object.entries(pids)) out[name] = sched(pid);
  return out;
}

function schedDiff(a: ReturnType<typeof schedAll>, b: ReturnType<typeof schedAll>) {
  const out: Record<string, { runMs: number; runQueueWaitMs: number }> = {};
  for (const [name, x] of Object.entries(b)) {
    const y = a[name] ?? { runMs: 0, waitMs: 0 };
    out[name] = { runMs: Math.round(x.runMs - y.runMs), runQueueWaitMs: Math.round(x.waitMs - y.waitMs) };
  }
  return out;
}

/** CPU ms per thread of a process (/proc/<pid>/task), to diff across a phase. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(tid, cpuMs(pid, tid));
    } catch {
      // the thread ended
    }
  }
  return out;
}

/**
 * CPU ms across a phase: the main thread, and every other thread (Node names them all "node": the
 * SQLite checkpoint worker, V8's GC and compiler helpers, libuv's pool) by id, busiest first.
 */
function threadCpuDiff(pid: number, a: Map<string, number>, b: Map<string, number>) {
  const others: [string, number][] = [];
  let main = 0;
  for (const [tid, v] of b) {
    const d = v - (a.get(tid) ?? 0);
    if (tid === String(pid)) main = d;
    else if (d > 0) others.push([tid, d]);
  }
  others.sort((x, y) => y[1] - x[1]);
  return { main, others: Object.fromEntries(others.slice(0, 6)) };
}

async function openLoop(
  pool: Pool,
  headers: Record<string, string>,
  rate: number,
  secs: number,
  reqs: Req[] | null = null,
) {
  const lat: number[] = [];
  let errors = 0;
  const total = rate * secs;
  const start = performance.now();
  let scheduled = 0;
  const inflight = new Set<Promise<void>>();
  while (scheduled < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
    for (; scheduled < due; scheduled++) {
      const at = start + (scheduled * 1000) / rate;
      const sent = performance.now();
      const p = pool
        .request({ path: '/v1/chat/completions', method: 'POST', headers, body: BODY })
        .then(async (res) => {
          await res.body.text();
          const end = performance.now();
          if (res.statusCode === 200) {
            lat.push(end - at);
            reqs?.push({ at: epoch(at), sent: epoch(sent), end: epoch(end) });
          } else errors++;
        })
        .catch(() => {
          errors++;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await sleepUntilDue(start, scheduled, rate);
  }
  await Promise.all(inflight);
  lat.sort((a, b) => a - b);
  return { requests: total, errors, p50Ms: r2(pct(lat, 0.5)), p99Ms: r2(pct(lat, 0.99)) };
}

async function closedLoop(pool: Pool, headers: Record<string, string>, secs: number) {
  let n = 0;
  let errors = 0;
  const end = performance.now() + secs * 1000;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < end) {
        try {
          const res = await pool.request({
            path: '/v1/chat/completions',
            method: 'POST',
            headers,
            body: BODY,
          });
          await res.body.text();
          if (res.statusCode === 200) n++;
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { requests: n + errors, errors, rps: Math.round(n / secs) };
}

async function runVariant(v: (typeof variants)[number], mockPort: number) {
  const tmp = tempDir();
  const port = await freePort();
  const preload = join(tmp.dir, 'eld.mjs');
  writeFileSync(preload, PRELOAD);
  const configFile = writeBenchConfig(tmp.dir, port, {
    ...(process.env.KAPOK_BENCH_AUDIT === '1'
      ? { audit: { enabled: true, kek: '000102030405060708090a0b0c0d0e0f' } }
      : {}),
    gateway: benchGateway(mockPort, ADMIN),
  });
  const prof = cpuProf
    ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`, `--cpu-prof-name=${v.name}-${Date.now()}.cpuprofile`]
    : [];
  const kapok = spawn(
    'taskset',
    [
      '-c',
      '0',
      process.execPath,
      '--trace-gc',
      '--import',
      preload,
      ...prof,
      ...v.args,
      v.bin,
      'up',
      '--config',
      configFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BENCH_PROFILE_TAIL: tail ? '1' : '' } },
  );
  let gcLines: string[] = [];
  type Eld = {
    p50: number;
    p99: number;
    max: number;
    heapTotalMB: number;
    heapUsedMB: number;
    externalMB: number;
  };
  let eld: Eld | null = null;
  let onEld: (() => void) | null = null;
  kapok.stdout?.setEncoding('utf8').on('data', (s: string) => {
    for (const l of s.split('\n')) if (l.includes(' ms: ')) gcLines.push(l);
  });
  kapok.stderr?.setEncoding('utf8').on('data', (s: string) => {
    for (const l of s.split('\n'))
      if (l.startsWith('EV ')) {
        const [, kind, start, ms] = l.split(' ');
        kapokEvents.push({ kind: `kapok-${kind}`, start: Number(start), ms: Number(ms) });
      } else if (l.startsWith('ELD ')) {
        eld = JSON.parse(l.slice(4));
        onEld?.();
      } else if (l.trim()) process.stderr.write(`kapok: ${l}\n`);
  });
  const sampleEld = () =>
    new Promise<Eld>((resolve) => {
      onEld = () => {
        onEld = null;
        resolve(eld as Eld);
      };
      kapok.kill('SIGUSR2');
    });
  try {
    await waitFor200(`http://127.0.0.1:${port}/healthz`, performance.now(), kapok, 90_000);
    const key = await createBenchKey(`http://127.0.0.1:${port}`, ADMIN, 'gateway-profile');
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 256 });
    await closedLoop(pool, headers, 1); // warm-up: JIT, pools, caches
    // KAPOK_BENCH_PROFILE_IDLE_S: Kapok idle this long before the first phase, as in the gateway
    // bench (its direct and Node-floor phases run first, ~10 s).
    await new Promise((r) => setTimeout(r, Number(process.env.KAPOK_BENCH_PROFILE_IDLE_S ?? 0) * 1000));
    const pid = kapok.pid as number;
    const phases: Record<string, unknown> = {};
    const phase = async (name: string, run: (reqs: Req[] | null) => Promise<{ requests: number }>) => {
      await sampleEld();
      gcLines = [];
      kapokEvents = [];
      genEvents.length = 0;
      const reqs: Req[] | null = tail ? [] : null;
      const th0 = threadCpu(pid);
      const pids = { kapok: pid, mockUpstream: mock.pid as number, generator: process.pid };
      const s0 = schedAll(pids);
      const c0 = cpuMs(pid);
      const out = await run(reqs);
      const cpu = cpuMs(pid) - c0;
      const e = await sampleEld();
      const tailFigures = tail && reqs?.length ? { tail: tailOf(reqs, [...kapokEvents, ...genEvents]) } : {};
      phases[name] = {
        ...out,
        cpuUsPerRequest: Math.round((cpu * 1000) / out.requests),
        gc: gcOf(gcLines),
        eventLoopDelayMs: { p99: r2(e.p99), max: r2(e.max) },
        rssMB: Math.round(rssBytes(pid) / 2 ** 20),
        // V8's share of it: heap committed (new + old spaces) and used, and off-heap buffers.
        heapTotalMB: e.heapTotalMB,
        heapUsedMB: e.heapUsedMB,
        externalMB: e.externalMB,
        threadCpuMs: threadCpuDiff(pid, th0, threadCpu(pid)),
        mainThreads: schedDiff(s0, schedAll(pids)),
        ...tailFigures,
      };
    };
    for (const rate of rates)
      await phase(`open${rate}`, (reqs) => openLoop(pool, headers, rate, seconds, reqs));
    await phase('closed64', () => closedLoop(pool, headers, closed));
    await pool.close();
    return phases;
  } finally {
    await stop(kapok);
    tmp.remove();
  }
}

const mockPort = await freePort();
const mock = spawn('taskset', ['-c', '1', process.execPath, '-e', CHAT_MOCK], {
  env: { ...process.env, PORT: String(mockPort) },
  stdio: 'ignore',
});
spawn('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
try {
  const results: unknown[] = [];
  for (let r = 0; r < rounds; r++)
    for (const v of variants) {
      const phases = await runVariant(v, mockPort);
      const row = { round: r, variant: v.name, args: v.args, phases };
      console.log(JSON.stringify(row));
      results.push(row);
    }
} finally {
  await stop(mock);
}
