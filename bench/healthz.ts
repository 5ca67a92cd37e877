import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  BASELINE_SERVER,
  CAPABILITIES_OFF,
  freePort,
  kapokBin,
  reportPinning,
  root,
  spawnProcess,
  stop,
  tempDir,
  verdict,
  waitFor200,
} from './lib.js';

/**
 * /healthz throughput and latency with the server pinned to one core (taskset -c 0) and autocannon
 * on the other, against Kapok and against a bare node:http server answering the same JSON.
 * autocannon's non-2xx and error counts (transport errors, timeouts) fail the verdicts if any.
 */
export async function healthz() {
  const seconds = Number(process.env.KAPOK_BENCH_SECONDS ?? 10);
  const connections = Number(process.env.KAPOK_BENCH_CONNECTIONS ?? 10);
  const kapok = await run(seconds, connections, (port, dataDir) => ({
    cmd: ['taskset', '-c', '0', process.execPath, kapokBin, 'up'],
    env: {
      KAPOK_HTTP__PORT: String(port),
      KAPOK_HTTP__HOST: '127.0.0.1',
      // The empty platform (every capability is on by default).
      ...CAPABILITIES_OFF,
      KAPOK_DATA_DIR: dataDir,
      KAPOK_LOG__LEVEL: 'warn',
    },
  }));
  const baseline = await run(seconds, connections, (port) => ({
    cmd: ['taskset', '-c', '0', process.execPath, '-e', BASELINE_SERVER],
    env: { PORT: String(port) },
  }));
  return {
    setup: { seconds, connections, server: 'taskset -c 0', loadGenerator: 'autocannon, taskset -c 1' },
    kapok,
    baseline,
    ratio: { rps: Math.round((kapok.rps / baseline.rps) * 100) / 100 },
    targets: { rps: 15_000, p99Ms: 5 },
    ...(({ met, why }) => ({ met, why }))(
      verdict(
        { rps: kapok.rps >= 15_000, p99Ms: kapok.p99Ms <= 5 },
        {
          kapok: { requests: kapok.total, non2xx: kapok.non2xx, transportErrors: kapok.errors },
          baseline: { requests: baseline.total, non2xx: baseline.non2xx, transportErrors: baseline.errors },
        },
      ),
    ),
  };
}

async function run(
  seconds: number,
  connections: number,
  make: (port: number, dataDir: string) => { cmd: string[]; env: Record<string, string> },
) {
  const port = await freePort();
  const tmp = tempDir();
  const { cmd, env } = make(port, tmp.dir);
  const child = spawnProcess(cmd, env);
  try {
    const url = `http://127.0.0.1:${port}/healthz`;
    await waitFor200(url, performance.now(), child);
    const pinning = reportPinning('healthz', { server: child.pid });
    await autocannon(url, 2, connections); // warm-up (JIT, connection setup)
    const r = await autocannon(url, seconds, connections);
    return {
      rps: Math.round(r.requests.average),
      p50Ms: r.latency.p50,
      p99Ms: r.latency.p99,
      maxMs: r.latency.max,
      errors: r.errors,
      non2xx: r.non2xx,
      total: r.requests.total,
      pinning: { ...pinning, autocannon: 'taskset -c 1' },
    };
  } finally {
    await stop(child);
    tmp.remove();
  }
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; max: number };
  errors: number;
  non2xx: number;
}

function autocannon(url: string, seconds: number, connections: number): Promise<AutocannonResult> {
  const bin = join(root, 'node_modules/autocannon/autocannon.js');
  return new Promise((resolve, reject) => {
    const child = spawn(
      'taskset',
      ['-c', '1', process.execPath, bin, '-j', '-c', String(connections), '-d', String(seconds), url],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      resolve(JSON.parse(out) as AutocannonResult);
    });
  });
}
