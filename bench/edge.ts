import { type ChildProcess, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { EMBEDDED_SCHEMA } from '../src/adapters/sqlite/timeseries.js';
import {
  bucketQuantiles,
  diffBuckets,
  freePort,
  histogramBuckets,
  kapokBin,
  noBaseline,
  publishWindowed,
  reportPinning,
  root,
  rssBytes,
  spawnProcess,
  stop,
  tempDir,
  verdict,
  waitFor200,
  writeBenchConfig,
} from './lib.js';

/**
 * Edge telemetry, publish → stored in the embedded sink, QoS 1, publishers on the same machine
 * (mqtt.js, a window of unacknowledged messages per client). Kapok is pinned to core 0; the
 * publishers (this process) to core 1. Same-run baselines:
 *   - qos1: JSON messages, one point each: messages/s until every one is stored, and RSS; against
 *     the ceiling of a Mosquitto (a private one started pinned to core 0 like Kapok, or the broker
 *     at KAPOK_BENCH_MQTT_URL, whose pinning is not ours) relaying the same load to one plain QoS 1
 *     subscriber (no storage at all). No broker: the run fails, unless KAPOK_BENCH_SKIP_MOSQUITTO=1
 *     (or `npm run bench -- edge --skip-mosquitto`) says to go on without that baseline.
 *   - lag: open loop at 10,000 msg/s; receipt → sink confirmation from Kapok's lag histogram
 *     (bucket upper bounds, so p50/p99 are upper estimates). No baseline: the interval is internal.
 *   - line: 1,000-line line-protocol payloads: points/s until every point is stored; against a
 *     bare better-sqlite3 insert loop of the same points in a process pinned to core 0.
 * Publish errors (a failed PUBACK, a dropped connection) are counted in every loop; any fails
 * the verdicts.
 */
// Read when used: bench/run.ts turns --skip-mosquitto into the variable after this module loads.
const env = {
  get MQTT_URL() {
    return process.env.KAPOK_BENCH_MQTT_URL;
  },
  get SKIP_MOSQUITTO() {
    return process.env.KAPOK_BENCH_SKIP_MOSQUITTO === '1';
  },
  get MOSQUITTO_BIN() {
    return process.env.KAPOK_BENCH_MOSQUITTO_BIN ?? 'mosquitto';
  },
};

async function connect(url: string, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

/**
 * Publishes `n` messages from `clients` clients with `window` in flight each; resolves when every
 * one is acknowledged or failed. A failed publish (PUBACK error, connection lost) is counted, not
 * retried; a connection that closes early fails the messages it still held.
 */
async function publishAll(
  url: string,
  clients: number,
  n: number,
  window: number,
  payload: (i: number) => string,
  topic: (i: number) => string,
): Promise<{ errors: number }> {
  const cs = await Promise.all(Array.from({ length: clients }, () => connect(url)));
  return publishWindowed(cs, n, window, topic, payload);
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const l of text.split('\n')) if (l.startsWith(name)) sum += Number(l.slice(l.lastIndexOf(' ') + 1));
  return sum;
}

async function waitStored(base: string, want: number, limitMs = 120_000): Promise<void> {
  const end = Date.now() + limitMs;
  while ((await metric(base, 'kapok_edge_stored_points_total')) < want) {
    if (Date.now() > end) throw new Error(`not all ${want} points stored within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = tcpConnect(Number(u.port || 1883), u.hostname, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * The broker for the ceiling: the one at KAPOK_BENCH_MQTT_URL if set (not pinned by us), else a
 * private Mosquitto pinned to core 0 like Kapok (no persistence, unbounded subscriber queue, so it
 * drops nothing). Throws, naming the address, when it cannot be reached.
 */
async function startBroker(
  dir: string,
): Promise<{ url: string; child: ChildProcess | null; pinned: string }> {
  if (env.MQTT_URL) {
    if (!(await reachable(env.MQTT_URL)))
      throw new Error(
        `edge bench: the Mosquitto ceiling broker at ${env.MQTT_URL} (KAPOK_BENCH_MQTT_URL) is unreachable; ` +
          'start it, or run with KAPOK_BENCH_SKIP_MOSQUITTO=1 (--skip-mosquitto) to go on without that baseline',
      );
    return {
      url: env.MQTT_URL,
      child: null,
      pinned: `external broker at ${env.MQTT_URL}: not pinned by the bench`,
    };
  }
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 0',
      'log_dest none',
      '',
    ].join('\n'),
  );
  const url = `mqtt://127.0.0.1:${port}`;
  const child = spawnProcess(['taskset', '-c', '0', env.MOSQUITTO_BIN, '-c', conf], {});
  let spawnError = '';
  child.once('error', (e) => {
    spawnError = e.message;
  });
  const end = Date.now() + 5000;
  while (!(await reachable(url))) {
    if (spawnError || child.exitCode !== null || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(
        `edge bench: the Mosquitto ceiling broker (${env.MOSQUITTO_BIN} -c ${conf}) did not listen at ${url}` +
          `${spawnError ? ` (${spawnError})` : child.exitCode !== null ? ` (exited ${child.exitCode})` : ''}; ` +
          'install mosquitto, point KAPOK_BENCH_MOSQUITTO_BIN or KAPOK_BENCH_MQTT_URL at one, or run with ' +
          'KAPOK_BENCH_SKIP_MOSQUITTO=1 (--skip-mosquitto) to go on without that baseline',
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url,
    child,
    pinned: `private mosquitto, ${reportPinning('edge', { mosquitto: child.pid }).mosquitto}`,
  };
}

async function ceiling(url: string, n: number, clients: number, window: number) {
  const sub = await connect(url, { clientId: `kapok-bench-sub-${process.pid}`, clean: true });
  const prefix = `kapok-bench-${process.pid}`;
  await sub.subscribeAsync(`${prefix}/#`, { qos: 1 });
  let got = 0;
  let lastAt = performance.now();
  sub.on('message', () => {
    got++;
    lastAt = performance.now();
  });
  const t0 = performance.now();
  const { errors } = await publishAll(
    url,
    clients,
    n,
    window,
    (i) => `{"v":${i}}`,
    (i) => `${prefix}/d${i % 100}/env`,
  );
  // An external Mosquitto may drop QoS 1 messages for a subscriber past max_queued_messages (1000
  // by default): stop waiting once nothing arrived for a second, and report what was delivered.
  while (got < n && performance.now() - lastAt < 1000) await new Promise((r) => setTimeout(r, 5));
  const s = (lastAt - t0) / 1000;
  await sub.endAsync();
  return {
    published: n,
    delivered: got,
    publishErrors: errors,
    seconds: round(s),
    messagesPerSec: Math.round(got / s),
  };
}

/**
 * The line-protocol floor: the same points (2 fields each, as the same number of rows) inserted by
 * a bare better-sqlite3 loop, a prepared INSERT inside one transaction per batch of `batch` points,
 * WAL + synchronous=NORMAL like the sink, into a flat table; points built in memory (no MQTT, no
 * parsing, no spool). Run in a child pinned to core 0, where Kapok runs. Returns points/s.
 */
const SQLITE_FLOOR = `
const Database = require('better-sqlite3');
const [file, msgs, lines, batch, mode] = process.argv.slice(1).map((x, i) => (i === 0 || i === 4 ? x : Number(x)));
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
const pts = [];
for (let m = 0; m < msgs; m++)
  for (let j = 0; j < lines; j++)
    pts.push([\`core=c\${j % 8}\`, (1900000000000 + m * lines + j) * 1000000, (j % 100) + 0.5, 40 + (j % 30), j % 8]);
let write;
if (mode === 'sink') {
  // The embedded sink's way: its pragmas and points table, each batch's rows in (series, ts) order,
  // 128-row INSERT OR REPLACE statements (src/adapters/sqlite/timeseries.ts), series ids known.
  db.pragma('cache_size = -65536');
  db.pragma('temp_store = MEMORY');
  db.exec(${JSON.stringify(EMBEDDED_SCHEMA)}); // the sink's own, so the two cannot drift apart
  const one = db.prepare('INSERT OR REPLACE INTO points (series, ts, value, svalue) VALUES (?, ?, ?, ?)');
  const many = db.prepare('INSERT OR REPLACE INTO points (series, ts, value, svalue) VALUES ' + Array(128).fill('(?, ?, ?, ?)').join(', '));
  const params = new Array(512);
  write = db.transaction((from, to) => {
    const rows = [];
    for (let i = from; i < to; i++) {
      const p = pts[i];
      rows.push([p[4] * 2 + 1, p[1], p[2]], [p[4] * 2 + 2, p[1], p[3]]);
    }
    rows.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let i = 0;
    for (; i + 128 <= rows.length; i += 128) {
      let k = 0;
      for (let j = i; j < i + 128; j++) {
        const r = rows[j];
        params[k++] = r[0]; params[k++] = r[1]; params[k++] = r[2]; params[k++] = null;
      }
      many.run(params);
    }
    for (; i < rows.length; i++) one.run(rows[i][0], rows[i][1], rows[i][2], null);
  });
} else {
  db.exec('CREATE TABLE points (measurement TEXT, tags TEXT, field TEXT, ts INTEGER, value REAL)');
  const ins = db.prepare('INSERT INTO points (measurement, tags, field, ts, value) VALUES (?, ?, ?, ?, ?)');
  write = db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const p = pts[i];
      ins.run('cpu', p[0], 'usage', p[1], p[2]);
      ins.run('cpu', p[0], 'temp', p[1], p[3]);
    }
  });
}
const t0 = performance.now();
for (let i = 0; i < pts.length; i += batch) write(i, Math.min(pts.length, i + batch));
const s = (performance.now() - t0) / 1000;
const rows = db.prepare('SELECT count(*) AS n FROM points').get().n;
if (rows !== pts.length * 2) throw new Error('sqlite floor stored ' + rows + ' rows, expected ' + pts.length * 2);
process.stdout.write(JSON.stringify({ points: pts.length, rows, seconds: s, pointsPerSec: Math.round(pts.length / s) }));
`;

/** mode flat: the floor above; sink: the embedded sink's table and statements, bare (no Kapok). */
export function sqliteFloor(
  dir: string,
  msgs: number,
  lines: number,
  batch: number,
  file = 'floor.db',
  mode: 'flat' | 'sink' = 'flat',
) {
  const r = spawnSync(
    'taskset',
    [
      '-c',
      '0',
      process.execPath,
      '-e',
      SQLITE_FLOOR,
      join(dir, file),
      String(msgs),
      String(lines),
      String(batch),
      mode,
    ],
    { cwd: root, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`edge bench: the better-sqlite3 floor failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout) as { points: number; rows: number; seconds: number; pointsPerSec: number };
}

export async function edge() {
  if (process.env.KAPOK_BENCH_EDGE_ONLY === 'ingest') return edgeIngest();
  const n = Number(process.env.KAPOK_BENCH_EDGE_MESSAGES ?? 50_000);
  // Checked before anything runs: a bad value fails at once, not after minutes of measuring.
  const lpRounds = Number(process.env.KAPOK_BENCH_EDGE_LP_ROUNDS ?? 3);
  const lpWarmUp = Number(process.env.KAPOK_BENCH_EDGE_LP_WARMUP ?? 100);
  if (!Number.isInteger(lpRounds) || lpRounds < 1 || !Number.isInteger(lpWarmUp) || lpWarmUp < 0)
    throw new Error(
      'edge bench: KAPOK_BENCH_EDGE_LP_ROUNDS must be a whole number ≥ 1 and KAPOK_BENCH_EDGE_LP_WARMUP ≥ 0',
    );
  const clients = 4;
  const window = 100;
  const batchSize = 5000;
  spawnSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const tmp = tempDir();
  // The ceiling's broker first: a missing one fails the run before minutes of measuring, not after.
  // A private one idles (no traffic, no CPU) until its turn.
  let b: Awaited<ReturnType<typeof startBroker>> | null = null;
  try {
    if (!env.SKIP_MOSQUITTO) b = await startBroker(tmp.dir);
  } catch (err) {
    tmp.remove();
    throw err;
  }
  let broker: ChildProcess | null = b?.child ?? null;
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const configFile = writeBenchConfig(tmp.dir, httpPort, {
    edge: {
      enabled: true,
      auth: { anonymous: true },
      // Since issue 13 nothing is allowed by default: the publishers get telemetry explicitly.
      acl: { grants: [{ who: 'anonymous', publish: ['telemetry/#'] }] },
      mqtt: { host: '127.0.0.1', port: mqttPort },
      batch: { size: batchSize, intervalMs: 50 },
    },
  });
  const kapok = spawnProcess(
    ['taskset', '-c', '0', process.execPath, kapokBin, 'up', '--config', configFile],
    {},
  );
  const base = `http://127.0.0.1:${httpPort}`;
  const url = `mqtt://127.0.0.1:${mqttPort}`;
  try {
    await waitFor200(`${base}/readyz`, performance.now(), kapok);
    const pid = kapok.pid as number;
    const pinning: Record<string, string> = reportPinning('edge', { kapok: pid, publishers: process.pid });
    const log = (m: string) => process.stderr.write(`  edge: ${m}\n`);
    log(`qos1 ${n} messages`);

    // 1. QoS 1 JSON, one point per message, closed loop.
    let t0 = performance.now();
    const qos1 = await publishAll(
      url,
      clients,
      n,
      window,
      (i) => `{"v":${i},"ts":${1_700_000_000_000 + i}}`,
      (i) => `telemetry/d${i % 100}/env`,
    );
    const ackedS = (performance.now() - t0) / 1000;
    await waitStored(base, n - qos1.errors);
    const storedS = (performance.now() - t0) / 1000;
    const rss = rssBytes(pid);

    log('lag at 10,000 msg/s');
    // 2. Lag at a fixed 10,000 msg/s for 3 s (open loop, 10 messages per ms tick).
    const lagMetric = 'kapok_edge_end_to_end_lag_seconds';
    const lagBefore = histogramBuckets(await metricsText(base), lagMetric);
    const rate = 10_000;
    const seconds = 3;
    const pubs = await Promise.all([connect(url), connect(url)]);
    let pubackErrors = 0;
    let lagAcked = 0;
    let lostConnections = 0;
    let ending = false;
    for (const p of pubs) {
      p.on('error', () => {});
      p.on('close', () => {
        if (!ending) lostConnections++;
      });
    }
    t0 = performance.now();
    let sent = 0;
    const total = rate * seconds;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
        for (; sent < due; sent++)
          (pubs[sent % 2] as MqttClient).publish(
            `telemetry/lag${sent % 50}/env`,
            `{"v":${sent},"ts":${1_800_000_000_000 + sent}}`,
            { qos: 1 },
            (err) => {
              if (err) pubackErrors++;
              else lagAcked++;
            },
          );
        if (sent >= total) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
    const offeredS = (performance.now() - t0) / 1000;
    // Every message acknowledged or failed by the time all are stored (or a dropped connection).
    const ackBy = Date.now() + 30_000;
    while (lagAcked + pubackErrors < total && lostConnections === 0 && Date.now() < ackBy)
      await new Promise((r) => setTimeout(r, 10));
    const lagErrors = total - lagAcked;
    await waitStored(base, n - qos1.errors + lagAcked);
    ending = true;
    await Promise.all(pubs.map((p) => p.endAsync().catch(() => {})));
    const lag = bucketQuantiles(diffBuckets(histogramBuckets(await metricsText(base), lagMetric), lagBefore));

    // 3. Line protocol, 1,000 points per message: an untimed warm-up (the decoder's and the sink's
    // paths are still cold after the JSON phases: the first timed run was 15-25 % slower than the
    // next ones), then LP_ROUNDS timed runs of the same size, reported as the median and spread.
    // Timestamps differ in every run, so no point replaces an earlier one.
    const lines = 1000;
    const msgs = Number(process.env.KAPOK_BENCH_EDGE_LP_MESSAGES ?? 300);
    const lp = (m: number) => {
      let s = '';
      for (let j = 0; j < lines; j++)
        s += `cpu,core=c${j % 8} usage=${(j % 100) + 0.5},temp=${40 + (j % 30)}i ${(1_900_000_000_000 + m * lines + j) * 1_000_000}\n`;
      return s;
    };
    let lpOffset = 0;
    let lpErrors = 0;
    const lpRun = async (count: number) => {
      const payloads = Array.from({ length: count }, (_, m) => lp(lpOffset + m));
      lpOffset += count;
      const storedBefore = await metric(base, 'kapok_edge_stored_points_total');
      const start = performance.now();
      const pub = await publishAll(
        url,
        2,
        count,
        8,
        (m) => payloads[m] as string,
        (m) => `telemetry/lp${m % 10}/cpu`,
      );
      lpErrors += pub.errors;
      await waitStored(base, storedBefore + (count - pub.errors) * lines);
      return Math.round((count * lines) / ((performance.now() - start) / 1000));
    };
    log(`line protocol: warm-up ${lpWarmUp} messages, then ${lpRounds} × ${msgs}`);
    const lpWarmUpPerSec = lpWarmUp > 0 ? await lpRun(lpWarmUp) : null;
    const lpRuns: number[] = [];
    for (let r = 0; r < lpRounds; r++) lpRuns.push(await lpRun(msgs));
    const points = msgs * lines;
    const lpPerSec = median(lpRuns);
    await stop(kapok);

    log('line protocol floor: bare better-sqlite3 inserts of the same points');
    const floorRuns = Array.from(
      { length: lpRounds },
      (_, r) => sqliteFloor(tmp.dir, msgs, lines, batchSize, `floor-${r}.db`).pointsPerSec,
    );
    const floorPerSec = median(floorRuns);
    log("line protocol: the sink's own table and statements, bare");
    const sinkFloorRuns = Array.from(
      { length: lpRounds },
      (_, r) => sqliteFloor(tmp.dir, msgs, lines, batchSize, `sink-floor-${r}.db`, 'sink').pointsPerSec,
    );
    const sinkFloorPerSec = median(sinkFloorRuns);

    let top: Awaited<ReturnType<typeof ceiling>> | null = null;
    let ext: Awaited<ReturnType<typeof externalMode>> | null = null;
    let ceilingNote: string;
    if (!b) {
      ceilingNote = noBaseline(
        'edge qos1 storedPerSec',
        'the Mosquitto ceiling was skipped (KAPOK_BENCH_SKIP_MOSQUITTO=1)',
      );
    } else {
      log('mosquitto ceiling');
      pinning.mosquitto = b.pinned;
      top = await ceiling(b.url, n, clients, window);
      ext = await externalMode(b, n, clients, window);
      pinning.externalMode =
        'live: Kapok and the broker on cpu 0, publishers on cpu 1; shared drain: Kapoks on cpu 0 (and 1), the broker on cpus 0-1, publishers idle while timed';
      if (broker) await stop(broker);
      broker = null;
      ceilingNote = `${b.pinned}, relaying to one QoS 1 subscriber (no storage), same run`;
    }
    log('authorization on vs off');
    const acl = await aclComparison(n, clients, window);
    const qos1PerSec = Math.round(n / storedS);
    const lagNote = noBaseline(
      'edge lagAt10k',
      'receipt → sink confirmation is an interval inside Kapok (its own histogram); no outside system measures the same span',
    );
    const extRatio = ext ? round(ext.live.storedPerSec / qos1PerSec) : null;
    const v = verdict(
      {
        ...(top ? { qos1ToCeiling: qos1PerSec / top.messagesPerSec >= 0.9 } : {}),
        lineProtocolPerSec: lpPerSec >= 200_000,
        aclRatio: acl.ratio >= 0.95,
        aclOnPerSec: Math.max(...acl.onPerSec) >= 30_000,
        ...(ext
          ? {
              externalToEmbedded: (extRatio ?? 0) >= 0.8,
              externalSharedTwoVsOne: (ext.shared?.ratio ?? 0) >= 1.6,
            }
          : {}),
      },
      {
        qos1: { requests: n, non2xx: 0, transportErrors: qos1.errors },
        lag: { requests: total, non2xx: 0, transportErrors: lagErrors },
        lineProtocol: { requests: msgs * lpRounds + lpWarmUp, non2xx: 0, transportErrors: lpErrors },
        aclComparison: { requests: acl.messages * 4, non2xx: 0, transportErrors: acl.publishErrors },
        ...(top ? { ceiling: { requests: n, non2xx: 0, transportErrors: top.publishErrors } } : {}),
        ...(ext ? { externalMode: { requests: n * 3, non2xx: 0, transportErrors: ext.publishErrors } } : {}),
      },
    );
    return {
      setup: {
        kapok:
          'taskset -c 0, embedded broker (Aedes) → SQLite spool (WAL, synchronous=NORMAL) → embedded SQLite sink',
        publishers: `taskset -c 1, mqtt.js, ${clients} clients × ${window} in flight, QoS 1`,
        ceiling: ceilingNote,
        lineProtocolFloor:
          'taskset -c 0, bare better-sqlite3: prepared INSERT, one transaction per 5,000 points, WAL + synchronous=NORMAL, flat table, 2 rows per point, points built in memory (no MQTT, no parsing)',
        lineProtocolSinkSql:
          "taskset -c 0, bare better-sqlite3 doing the embedded sink's SQL: its pragmas and (series, ts) table, rows sorted per 5,000-point transaction, 128-row INSERT OR REPLACE (no MQTT, no parsing, no spool, series ids known)",
        pinning,
        errors:
          'publish errors (failed PUBACK, lost connection) are counted per loop; any fails the verdicts',
      },
      qos1: {
        messages: n,
        publishErrors: qos1.errors,
        ackedPerSec: Math.round(n / ackedS),
        storedPerSec: qos1PerSec,
        rssMiB: Math.round(rss / 1048576),
        mosquittoCeiling: top,
        ratioToCeiling: top ? round(qos1PerSec / top.messagesPerSec) : null,
      },
      externalMode: ext
        ? {
            note: 'Kapok consuming from the ceiling broker (edge.mqtt.mode external), QoS 1, embedded sink',
            live: ext.live,
            ratioToEmbedded: extRatio,
            ratioToCeiling: top ? round(ext.live.storedPerSec / top.messagesPerSec) : null,
            sharedSubscription: ext.shared,
            targets: 'live ≥ 0.8 × embedded qos1 storedPerSec; two Kapoks ≥ 1.6 × one (issue 24)',
          }
        : { skipped: 'no broker (KAPOK_BENCH_SKIP_MOSQUITTO=1)' },
      lagAt10k: {
        offeredPerSec: Math.round(total / offeredS),
        messages: total,
        publishErrors: lagErrors,
        batches: lag.count,
        p50MsAtMost: lag.p50MsAtMost,
        p99MsAtMost: lag.p99MsAtMost,
        note: 'receipt → sink confirmed, histogram bucket upper bounds',
        baseline: lagNote,
      },
      aclOnVsOff: acl,
      lineProtocol: {
        messages: msgs,
        publishErrors: lpErrors,
        pointsPerMessage: lines,
        points,
        warmUp: { messages: lpWarmUp, pointsPerSec: lpWarmUpPerSec },
        rounds: lpRuns,
        pointsPerSec: lpPerSec,
        spread: [Math.min(...lpRuns), Math.max(...lpRuns)],
        fieldsPerPoint: 2,
        bareSqlitePointsPerSec: floorPerSec,
        bareSqliteRounds: floorRuns,
        ratioToBareSqlite: round(lpPerSec / floorPerSec),
        bareSinkSqlPointsPerSec: sinkFloorPerSec,
        bareSinkSqlRounds: sinkFloorRuns,
        ratioToBareSinkSql: round(lpPerSec / sinkFloorPerSec),
        target: '≥ 200,000 points/s, the median of the rounds (issue 24)',
      },
      met: v.met,
      why: v.why,
    };
  } finally {
    await stop(kapok);
    if (broker) await stop(broker);
    tmp.remove();
  }
}

async function metricsText(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text();
}

function round(x: number) {
  return Math.round(x * 100) / 100;
}

/**
 * Issue 13: QoS 1 end to end with the authorization checks on (a grant set whose matching filter
 * is the last of four) and off (edge.acl.enabled: false), each in a fresh Kapok, alternated
 * off/on twice; the best run of each counts (the machine is shared).
 */
async function aclComparison(n: number, clients: number, window: number) {
  let publishErrors = 0;
  const runOnce = async (on: boolean) => {
    const tmp = tempDir();
    const httpPort = await freePort();
    const mqttPort = await freePort();
    const configFile = writeBenchConfig(tmp.dir, httpPort, {
      edge: {
        enabled: true,
        auth: { anonymous: true },
        acl: on
          ? {
              grants: [
                { who: 'anonymous', publish: ['cmd/+/status', 'v2x/+/bsm', 'alerts/#', 'telemetry/+/env'] },
              ],
            }
          : { enabled: false },
        mqtt: { host: '127.0.0.1', port: mqttPort },
        batch: { size: 5000, intervalMs: 50 },
      },
    });
    const k = spawnProcess(
      ['taskset', '-c', '0', process.execPath, kapokBin, 'up', '--config', configFile],
      {},
    );
    const base = `http://127.0.0.1:${httpPort}`;
    try {
      await waitFor200(`${base}/readyz`, performance.now(), k);
      const t0 = performance.now();
      const { errors } = await publishAll(
        `mqtt://127.0.0.1:${mqttPort}`,
        clients,
        n,
        window,
        (i) => `{"v":${i},"ts":${1_700_000_000_000 + i}}`,
        (i) => `telemetry/d${i % 100}/env`,
      );
      await waitStored(base, n - errors);
      publishErrors += errors;
      return Math.round(n / ((performance.now() - t0) / 1000));
    } finally {
      await stop(k);
      tmp.remove();
    }
  };
  const off: number[] = [];
  const on: number[] = [];
  for (let r = 0; r < 2; r++) {
    off.push(await runOnce(false));
    on.push(await runOnce(true));
  }
  const bestOn = Math.max(...on);
  const bestOff = Math.max(...off);
  return {
    messages: n,
    publishErrors,
    offPerSec: off,
    onPerSec: on,
    ratio: round(bestOn / bestOff),
    target: 'ratio ≥ 0.95 and on ≥ 30,000 msg/s (issue 13)',
  };
}

let externalRuns = 0;

/** CPU seconds (user + system) a process used so far (Linux /proc; clock ticks of 10 ms). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** A Kapok in external mode on `cpus`, consuming `filter` from the broker at `url`. */
async function consumer(
  url: string,
  cpus: string,
  clientId: string,
  filter: string,
  shareGroup: string | null,
) {
  const tmp = tempDir();
  const httpPort = await freePort();
  const rm = process.env.KAPOK_BENCH_EDGE_RECEIVE_MAXIMUM;
  const configFile = writeBenchConfig(tmp.dir, httpPort, {
    edge: {
      enabled: true,
      mqtt: {
        mode: 'external',
        url,
        clientId,
        topics: [filter],
        shareGroup,
        // Only when asked: a build from before issue 24 (KAPOK_BENCH_KAPOK_BIN) has no such key.
        ...(rm ? { receiveMaximum: Number(rm) } : {}),
      },
      batch: { size: 5000, intervalMs: 50 },
    },
  });
  const child = spawnProcess(
    ['taskset', '-c', cpus, process.execPath, kapokBin, 'up', '--config', configFile],
    {},
  );
  const base = `http://127.0.0.1:${httpPort}`;
  // /readyz is 200 once the external client is connected (and subscribed right after).
  await waitFor200(`${base}/readyz`, performance.now(), child, 60_000);
  await new Promise((r) => setTimeout(r, 200));
  return {
    child,
    base,
    async close() {
      await stop(child);
      tmp.remove();
    },
  };
}

async function waitStoredAll(bases: string[], want: number, limitMs = 120_000): Promise<number[]> {
  const end = Date.now() + limitMs;
  for (;;) {
    const got = await Promise.all(bases.map((b) => metric(b, 'kapok_edge_stored_points_total')));
    if (got.reduce((a, b) => a + b, 0) >= want) return got;
    if (Date.now() > end)
      throw new Error(`external mode: ${got} of ${want} points stored within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Issue 24, external mode: Kapok consuming QoS 1 telemetry from the bench's broker.
 *   - live: the qos1 load (same publishers, same window) published to the broker, one Kapok on
 *     core 0 with the broker (the CPU embedded mode's Kapok has alone), publish → all stored.
 *   - shared: drain of a backlog: the Kapoks connect and subscribe ($share/<group>/…), are stopped
 *     (SIGSTOP), n messages are published into the broker's queue, then SIGCONT and the time until
 *     every message is stored. One Kapok on core 0 vs two on cores 0 and 1, the broker on either
 *     core; the publishers are idle while it is timed.
 */
async function externalMode(
  b: { url: string; child: ChildProcess | null },
  n: number,
  clients: number,
  window: number,
  liveOnly = false,
) {
  const log = (m: string) => process.stderr.write(`  edge: ${m}\n`);
  const id = `kapok-bench-${process.pid}-${++externalRuns}`;
  let errors = 0;

  log(`external mode: live, ${n} messages`);
  const k = await consumer(b.url, '0', `${id}-live`, `telemetry/+/live${externalRuns}`, null);
  let liveS: number;
  let cpu = { kapokUsPerMsg: Number.NaN, brokerUsPerMsg: Number.NaN };
  try {
    const k0 = cpuSeconds(k.child.pid);
    const b0 = cpuSeconds(b.child?.pid);
    const t0 = performance.now();
    const pub = await publishAll(
      b.url,
      clients,
      n,
      window,
      (i) => `{"v":${i},"ts":${1_700_000_000_000 + i}}`,
      (i) => `telemetry/d${i % 100}/live${externalRuns}`,
    );
    errors += pub.errors;
    await waitStoredAll([k.base], n - pub.errors);
    liveS = (performance.now() - t0) / 1000;
    cpu = {
      kapokUsPerMsg: Math.round(((cpuSeconds(k.child.pid) - k0) / n) * 1e6),
      brokerUsPerMsg: Math.round(((cpuSeconds(b.child?.pid) - b0) / n) * 1e6),
    };
  } finally {
    await k.close();
  }

  const live = { messages: n, seconds: round(liveS), storedPerSec: Math.round(n / liveS), cpu };
  if (liveOnly) return { live, shared: null, publishErrors: errors };
  // The broker may use both cores for the drain (two Kapoks need one each).
  if (b.child?.pid) spawnSync('taskset', ['-p', '-c', '0,1', String(b.child.pid)], { stdio: 'ignore' });
  const drain = async (cpus: string[], tag: string) => {
    log(`external mode: drain, ${cpus.length} Kapok(s) in one share group`);
    const ks: Awaited<ReturnType<typeof consumer>>[] = [];
    try {
      for (const [i, c] of cpus.entries())
        ks.push(await consumer(b.url, c, `${id}-${tag}-${i}`, `telemetry/+/${tag}`, `g${tag}`));
      for (const x of ks) x.child.kill('SIGSTOP');
      const pub = await publishAll(
        b.url,
        clients,
        n,
        window,
        (i) => `{"v":${i},"ts":${1_700_000_000_000 + i}}`,
        (i) => `telemetry/d${i % 100}/${tag}`,
      );
      errors += pub.errors;
      const t0 = performance.now();
      for (const x of ks) x.child.kill('SIGCONT');
      const split = await waitStoredAll(
        ks.map((x) => x.base),
        n - pub.errors,
      );
      const s = (performance.now() - t0) / 1000;
      return {
        kapoks: cpus.length,
        cpus: cpus.join(' / '),
        split,
        seconds: round(s),
        storedPerSec: Math.round(n / s),
      };
    } finally {
      for (const x of ks) x.child.kill('SIGCONT');
      for (const x of ks) await x.close();
    }
  };
  const one = await drain(['0'], `share1x${externalRuns}`);
  const two = await drain(['0', '1'], `share2x${externalRuns}`);
  if (b.child?.pid) spawnSync('taskset', ['-p', '-c', '0', String(b.child.pid)], { stdio: 'ignore' });
  return {
    live,
    shared: { one, two, ratio: round(two.storedPerSec / one.storedPerSec) },
    publishErrors: errors,
  };
}

/** The middle of three figures (or of what there is). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
}

/**
 * KAPOK_BENCH_EDGE_ONLY=ingest: the QoS 1 intake figures alone, for repeated before/after runs on
 * a busy machine: embedded mode, the Mosquitto ceiling and external mode (live), alternated for
 * KAPOK_BENCH_EDGE_ROUNDS rounds (3) in fresh processes, each figure the median of its rounds,
 * then the share-group drain once. Pinning and loads as in the full run.
 */
async function edgeIngest() {
  const n = Number(process.env.KAPOK_BENCH_EDGE_MESSAGES ?? 50_000);
  const rounds = Number(process.env.KAPOK_BENCH_EDGE_ROUNDS ?? 3);
  const clients = 4;
  const window = 100;
  spawnSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const tmp = tempDir();
  const b = await startBroker(tmp.dir).catch((err) => {
    tmp.remove();
    throw err;
  });
  const log = (m: string) => process.stderr.write(`  edge: ${m}\n`);
  const embedded = async () => {
    const dir = tempDir();
    const httpPort = await freePort();
    const mqttPort = await freePort();
    const configFile = writeBenchConfig(dir.dir, httpPort, {
      edge: {
        enabled: true,
        auth: { anonymous: true },
        acl: { grants: [{ who: 'anonymous', publish: ['telemetry/#'] }] },
        mqtt: { host: '127.0.0.1', port: mqttPort },
        batch: { size: 5000, intervalMs: 50 },
      },
    });
    const k = spawnProcess(
      ['taskset', '-c', '0', process.execPath, kapokBin, 'up', '--config', configFile],
      {},
    );
    const base = `http://127.0.0.1:${httpPort}`;
    try {
      await waitFor200(`${base}/readyz`, performance.now(), k, 60_000);
      const c0 = cpuSeconds(k.pid);
      const t0 = performance.now();
      const r = await publishAll(
        `mqtt://127.0.0.1:${mqttPort}`,
        clients,
        n,
        window,
        (i) => `{"v":${i},"ts":${1_700_000_000_000 + i}}`,
        (i) => `telemetry/d${i % 100}/env`,
      );
      await waitStored(base, n - r.errors);
      return {
        perSec: Math.round(n / ((performance.now() - t0) / 1000)),
        usPerMsg: Math.round(((cpuSeconds(k.pid) - c0) / n) * 1e6),
        errors: r.errors,
      };
    } finally {
      await stop(k);
      dir.remove();
    }
  };
  const emb: number[] = [];
  const ceil: number[] = [];
  const ext: number[] = [];
  const embCpu: number[] = [];
  const ceilCpu: number[] = [];
  const extCpu: { kapokUsPerMsg: number; brokerUsPerMsg: number }[] = [];
  let errors = 0;
  let shared: Awaited<ReturnType<typeof externalMode>>['shared'] | null = null;
  try {
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1} of ${rounds}: embedded, ceiling, external`);
      const e = await embedded();
      emb.push(e.perSec);
      embCpu.push(e.usPerMsg);
      errors += e.errors;
      const bc0 = cpuSeconds(b.child?.pid);
      const c = await ceiling(b.url, n, clients, window);
      ceilCpu.push(Math.round(((cpuSeconds(b.child?.pid) - bc0) / n) * 1e6));
      ceil.push(c.messagesPerSec);
      errors += c.publishErrors + (c.published - c.delivered);
      const x = await externalMode(b, n, clients, window, r < rounds - 1);
      ext.push(x.live.storedPerSec);
      extCpu.push(x.live.cpu);
      errors += x.publishErrors;
      if (x.shared) shared = x.shared;
    }
  } finally {
    if (b.child) await stop(b.child);
    tmp.remove();
  }
  const e = median(emb);
  const x = median(ext);
  const c = median(ceil);
  return {
    setup: {
      kapok: 'taskset -c 0 (embedded: Aedes → spool → embedded sink; external: beside the broker)',
      publishers: `taskset -c 1, mqtt.js, ${clients} clients × ${window} in flight, QoS 1, ${n} messages`,
      ceiling: `private mosquitto on cpu 0 relaying to one plain QoS 1 subscriber`,
      rounds,
    },
    embeddedPerSec: emb,
    ceilingPerSec: ceil,
    externalPerSec: ext,
    median: { embedded: e, ceiling: c, external: x },
    embeddedToCeiling: round(e / c),
    externalToEmbedded: round(x / e),
    externalToCeiling: round(x / c),
    sharedSubscription: shared,
    // CPU time per stored message (Linux /proc, 10 ms ticks): steadier than rates on a busy
    // machine, where every process waits for a core. External: Kapok and the broker it needs.
    cpuUsPerMessage: {
      embeddedKapok: embCpu,
      ceilingBroker: ceilCpu,
      externalKapok: extCpu.map((c) => c.kapokUsPerMsg),
      externalBroker: extCpu.map((c) => c.brokerUsPerMsg),
      median: {
        embeddedKapok: median(embCpu),
        ceilingBroker: median(ceilCpu),
        externalKapok: median(extCpu.map((c) => c.kapokUsPerMsg)),
        externalBroker: median(extCpu.map((c) => c.brokerUsPerMsg)),
      },
    },
    errors,
  };
}
