import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { Agent, request } from 'undici';
import { sqliteFloor } from './edge.js';
import {
  freePort,
  kapokBin,
  kapokNodeArgs,
  reportPinning,
  spawnProcess,
  stop,
  tempDir,
  verdict,
  waitFor200,
  writeBenchConfig,
} from './lib.js';

/**
 * The InfluxDB write API: HTTP POSTs of 5,000-line line-protocol batches (`/api/v2/write`, a static
 * user's `Token user:password`, 4 in flight) → spool → embedded SQLite sink. Kapok is pinned to
 * core 0, the writer (this process, undici keep-alive) to core 1. Figures: points/s accepted (every
 * 204 means spooled) and points/s stored (until kapok_edge_stored_points_total has them all).
 * Same-run baselines:
 *   - the bare better-sqlite3 insert loop of the same points, pinned to core 0 (edge bench's floor);
 *   - a bare node:http server on core 0 that reads the same bodies and answers 204 (the transport).
 * Non-204 answers and transport errors are counted; any fails the verdicts.
 */

const LINES = 5000;
const IN_FLIGHT = 4;

function body(m: number): string {
  let s = '';
  for (let j = 0; j < LINES; j++)
    s += `cpu,device=h${m % 10},core=c${j % 8} usage=${(j % 100) + 0.5},temp=${40 + (j % 30)}i ${(1_900_000_000_000 + m * LINES + j) * 1_000_000}\n`;
  return s;
}

/** Sends `n` bodies with IN_FLIGHT requests at a time; counts non-204 answers and transport errors. */
async function send(url: string, bodies: string[], headers: Record<string, string>) {
  const agent = new Agent({ connections: IN_FLIGHT, pipelining: 1 });
  let next = 0;
  let non2xx = 0;
  let transportErrors = 0;
  let firstError = '';
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < bodies.length) {
        const i = next++;
        try {
          const res = await request(url, { method: 'POST', body: bodies[i], headers, dispatcher: agent });
          const text = await res.body.text();
          if (res.statusCode !== 204) {
            non2xx++;
            firstError ||= `${res.statusCode} ${text.slice(0, 200)}`;
          }
        } catch (err) {
          transportErrors++;
          firstError ||= (err as Error).message;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await agent.close();
  return { seconds, non2xx, transportErrors, firstError };
}

async function storedPoints(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const l of text.split('\n'))
    if (l.startsWith('kapok_edge_stored_points_total')) sum += Number(l.slice(l.lastIndexOf(' ') + 1));
  return sum;
}

const BARE_HTTP = `
const http = require('node:http');
const s = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => { Buffer.concat(chunks); res.statusCode = 204; res.end(); });
});
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

async function bareHttp(port: number): Promise<ChildProcess> {
  const child = spawn('taskset', ['-c', '0', process.execPath, '-e', BARE_HTTP, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`bare http server exited ${c}`)));
  });
  return child;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export async function edgeWrite() {
  const n = Number(process.env.KAPOK_BENCH_EDGE_WRITE_REQUESTS ?? 200);
  spawnSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const tmp = tempDir();
  const httpPort = await freePort();
  const configFile = writeBenchConfig(tmp.dir, httpPort, {
    edge: {
      enabled: true,
      auth: { users: [{ username: 'bench', password: 'bench-password-1' }] },
      acl: { grants: [{ who: 'user:bench', publish: ['telemetry/#'] }] },
      mqtt: { host: '127.0.0.1', port: await freePort() },
      batch: { size: 200, intervalMs: 50 },
    },
  });
  const nodeArgs = kapokNodeArgs();
  const kapok = spawnProcess(
    ['taskset', '-c', '0', process.execPath, ...nodeArgs, kapokBin, 'up', '--config', configFile],
    {},
  );
  const base = `http://127.0.0.1:${httpPort}`;
  let bare: ChildProcess | null = null;
  try {
    await waitFor200(`${base}/readyz`, performance.now(), kapok);
    const pinning: Record<string, string> = reportPinning('edge-write', {
      kapok: kapok.pid,
      writer: process.pid,
    });
    const log = (m: string) => process.stderr.write(`  edge-write: ${m}\n`);
    const bodies = Array.from({ length: n }, (_, m) => body(m));
    const bytes = bodies.reduce((a, b) => a + Buffer.byteLength(b), 0);
    const headers = {
      authorization: 'Token bench:bench-password-1',
      'content-type': 'text/plain; charset=utf-8',
    };
    // Warm-up (JIT, SQLite pages) on other timestamps, not counted.
    await send(`${base}/api/v2/write?org=o&bucket=b`, [body(1_000_000), body(1_000_001)], headers);
    // The warm-up's points are stored after its 204s: wait for them, or some land in the timed window.
    const warmUntil = Date.now() + 30_000;
    while ((await storedPoints(base)) < 2 * LINES && Date.now() < warmUntil)
      await new Promise((r) => setTimeout(r, 20));
    const before = await storedPoints(base);
    log(`${n} requests × ${LINES} lines`);
    const t0 = performance.now();
    const w = await send(`${base}/api/v2/write?org=o&bucket=b`, bodies, headers);
    const want = before + (n - w.non2xx - w.transportErrors) * LINES;
    const end = Date.now() + 120_000;
    while ((await storedPoints(base)) < want && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const storedS = (performance.now() - t0) / 1000;
    const stored = (await storedPoints(base)) - before;
    await stop(kapok);

    log('baseline: bare node:http reading the same bodies');
    const barePort = await freePort();
    bare = await bareHttp(barePort);
    pinning.bareHttp = reportPinning('edge-write', { bareHttp: bare.pid }).bareHttp as string;
    const b = await send(`http://127.0.0.1:${barePort}/`, bodies, headers);
    await stop(bare);
    bare = null;

    log('baseline: bare better-sqlite3 inserts of the same points');
    const floor = sqliteFloor(tmp.dir, n, LINES, LINES);
    const points = n * LINES;
    const acceptedPerSec = Math.round(points / w.seconds);
    const storedPerSec = Math.round(points / storedS);
    const v = verdict(
      { storedPointsPerSec300k: storedPerSec >= 300_000, allStored: stored >= points },
      {
        kapok: { requests: n, non2xx: w.non2xx, transportErrors: w.transportErrors },
        bareHttp: { requests: n, non2xx: b.non2xx, transportErrors: b.transportErrors },
      },
    );
    return {
      setup: {
        kapok:
          'taskset -c 0, POST /api/v2/write → SQLite spool (WAL, synchronous=NORMAL) → embedded SQLite sink',
        writer: `taskset -c 1, undici keep-alive, ${IN_FLIGHT} requests in flight, ${LINES} lines per request (2 fields each), static user Token auth, ACL on`,
        bareHttp: 'taskset -c 0, node:http server reading each body whole and answering 204',
        sqliteFloor:
          'taskset -c 0, bare better-sqlite3: prepared INSERT, one transaction per 5,000 points, WAL + synchronous=NORMAL, flat table, 2 rows per point, points built in memory (no HTTP, no parsing)',
        pinning,
        errors: w.firstError || b.firstError || null,
      },
      requests: n,
      linesPerRequest: LINES,
      bodyMiB: round(bytes / 1048576),
      points,
      acceptedPointsPerSec: acceptedPerSec,
      storedPointsPerSec: storedPerSec,
      storedPoints: stored,
      bareHttpPointsPerSec: Math.round(points / b.seconds),
      bareSqlitePointsPerSec: floor.pointsPerSec,
      ratioAcceptedToBareHttp: round(points / w.seconds / (points / b.seconds)),
      ratioStoredToBareSqlite: round(storedPerSec / floor.pointsPerSec),
      met: v.met,
      why: v.why,
    };
  } finally {
    await stop(kapok);
    if (bare) await stop(bare);
    tmp.remove();
  }
}
