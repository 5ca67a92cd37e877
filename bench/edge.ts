import { spawnSync } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import {
  freePort,
  kapokBin,
  rssBytes,
  spawnProcess,
  stop,
  tempDir,
  waitFor200,
  writeBenchConfig,
} from './lib.js';

/**
 * Edge telemetry, publish → stored in the embedded sink, QoS 1, publishers on the same machine
 * (mqtt.js, a window of unacknowledged messages per client). Kapok is pinned to core 0; the
 * publishers (this process) to core 1. The ceiling in the same run: the local Mosquitto relaying
 * the same load to one plain QoS 1 subscriber (no storage at all).
 *   - qos1: JSON messages, one point each: messages/s until every one is stored, and RSS.
 *   - lag: open loop at 10,000 msg/s; receipt → sink confirmation from Kapok's lag histogram
 *     (bucket upper bounds, so p50/p99 are upper estimates).
 *   - line: 1,000-line line-protocol payloads: points/s until every point is stored.
 */
const MOSQUITTO = process.env.KAPOK_BENCH_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

async function connect(url: string, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

/** Publishes `n` messages from `clients` clients with `window` in flight each; resolves when all are acked. */
async function publishAll(
  url: string,
  clients: number,
  n: number,
  window: number,
  payload: (i: number) => string,
  topic: (i: number) => string,
) {
  const cs = await Promise.all(Array.from({ length: clients }, () => connect(url)));
  let next = 0;
  await Promise.all(
    cs.map(
      (c) =>
        new Promise<void>((resolve, reject) => {
          let inflight = 0;
          const pump = () => {
            while (inflight < window && next < n) {
              const i = next++;
              inflight++;
              c.publish(topic(i), payload(i), { qos: 1 }, (err) => {
                if (err) return reject(err);
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
  await Promise.all(cs.map((c) => c.endAsync()));
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

async function ceiling(n: number, clients: number, window: number) {
  if (!(await reachable(MOSQUITTO))) return null;
  const sub = await connect(MOSQUITTO, { clientId: `kapok-bench-sub-${process.pid}`, clean: true });
  const prefix = `kapok-bench-${process.pid}`;
  await sub.subscribeAsync(`${prefix}/#`, { qos: 1 });
  let got = 0;
  let lastAt = performance.now();
  sub.on('message', () => {
    got++;
    lastAt = performance.now();
  });
  const t0 = performance.now();
  await publishAll(
    MOSQUITTO,
    clients,
    n,
    window,
    (i) => `{"v":${i}}`,
    (i) => `${prefix}/d${i % 100}/env`,
  );
  // Mosquitto drops QoS 1 messages for a subscriber past max_queued_messages (1000 by default):
  // stop waiting once nothing arrived for a second, and report what was delivered.
  while (got < n && performance.now() - lastAt < 1000) await new Promise((r) => setTimeout(r, 5));
  const s = (lastAt - t0) / 1000;
  await sub.endAsync();
  return { published: n, delivered: got, seconds: round(s), messagesPerSec: Math.round(got / s) };
}

export async function edge() {
  const n = Number(process.env.KAPOK_BENCH_EDGE_MESSAGES ?? 50_000);
  const clients = 4;
  const window = 100;
  spawnSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const tmp = tempDir();
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const configFile = writeBenchConfig(tmp.dir, httpPort, {
    edge: {
      enabled: true,
      auth: { anonymous: true },
      // Since issue 13 nothing is allowed by default: the publishers get telemetry explicitly.
      acl: { grants: [{ who: 'anonymous', publish: ['telemetry/#'] }] },
      mqtt: { host: '127.0.0.1', port: mqttPort },
      batch: { size: 5000, intervalMs: 50 },
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
    const log = (m: string) => process.stderr.write(`  edge: ${m}\n`);
    log(`qos1 ${n} messages`);

    // 1. QoS 1 JSON, one point per message, closed loop.
    let t0 = performance.now();
    await publishAll(
      url,
      clients,
      n,
      window,
      (i) => `{"v":${i},"ts":${1_700_000_000_000 + i}}`,
      (i) => `telemetry/d${i % 100}/env`,
    );
    const ackedS = (performance.now() - t0) / 1000;
    await waitStored(base, n);
    const storedS = (performance.now() - t0) / 1000;
    const rss = rssBytes(pid);

    log('lag at 10,000 msg/s');
    // 2. Lag at a fixed 10,000 msg/s for 3 s (open loop, 10 messages per ms tick).
    const lagBefore = await lagBuckets(base);
    const rate = 10_000;
    const seconds = 3;
    const pubs = await Promise.all([connect(url), connect(url)]);
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
          );
        if (sent >= total) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
    const offeredS = (performance.now() - t0) / 1000;
    await waitStored(base, n + total);
    await Promise.all(pubs.map((p) => p.endAsync()));
    const lag = quantiles(diff(await lagBuckets(base), lagBefore));

    log('line protocol');
    // 3. Line protocol, 1,000 points per message.
    const lines = 1000;
    const msgs = Number(process.env.KAPOK_BENCH_EDGE_LP_MESSAGES ?? 300);
    const lp = (m: number) => {
      let s = '';
      for (let j = 0; j < lines; j++)
        s += `cpu,core=c${j % 8} usage=${(j % 100) + 0.5},temp=${40 + (j % 30)}i ${(1_900_000_000_000 + m * lines + j) * 1_000_000}\n`;
      return s;
    };
    const payloads = Array.from({ length: msgs }, (_, m) => lp(m));
    const storedBefore = await metric(base, 'kapok_edge_stored_points_total');
    t0 = performance.now();
    await publishAll(
      url,
      2,
      msgs,
      8,
      (m) => payloads[m] as string,
      (m) => `telemetry/lp${m % 10}/cpu`,
    );
    await waitStored(base, storedBefore + msgs * lines);
    const lpS = (performance.now() - t0) / 1000;
    const points = msgs * lines;

    log('mosquitto ceiling');
    const top = await ceiling(n, clients, window);
    await stop(kapok);
    log('authorization on vs off');
    const acl = await aclComparison(n, clients, window);
    const qos1PerSec = Math.round(n / storedS);
    return {
      setup: {
        kapok:
          'taskset -c 0, embedded broker (Aedes) → SQLite spool (WAL, synchronous=NORMAL) → embedded SQLite sink',
        publishers: `taskset -c 1, mqtt.js, ${clients} clients × ${window} in flight, QoS 1`,
        ceiling:
          'local Mosquitto relaying the same load to one mqtt.js QoS 1 subscriber (no storage), same run',
      },
      qos1: {
        messages: n,
        ackedPerSec: Math.round(n / ackedS),
        storedPerSec: qos1PerSec,
        rssMiB: Math.round(rss / 1048576),
        mosquittoCeiling: top,
        ratioToCeiling: top ? round(qos1PerSec / top.messagesPerSec) : null,
      },
      lagAt10k: {
        offeredPerSec: Math.round(total / offeredS),
        messages: total,
        ...lag,
        note: 'receipt → sink confirmed, histogram bucket upper bounds',
      },
      aclOnVsOff: acl,
      lineProtocol: {
        messages: msgs,
        pointsPerMessage: lines,
        points,
        pointsPerSec: Math.round(points / lpS),
        fieldsPerPoint: 2,
      },
    };
  } finally {
    await stop(kapok);
    tmp.remove();
  }
}

async function lagBuckets(base: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = new Map<number, number>();
  for (const l of text.split('\n')) {
    const m = /^kapok_edge_end_to_end_lag_seconds_bucket\{.*le="([^"]+)".*\} (\d+)/.exec(l);
    if (m)
      out.set(
        m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]),
        (out.get(Number(m[1])) ?? 0) + Number(m[2]),
      );
  }
  return out;
}

function diff(a: Map<number, number>, b: Map<number, number>): Map<number, number> {
  return new Map([...a].map(([k, v]) => [k, v - (b.get(k) ?? 0)]));
}

function quantiles(buckets: Map<number, number>) {
  const sorted = [...buckets].sort((x, y) => x[0] - y[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  const q = (p: number) => {
    const hit = sorted.find(([, c]) => c >= p * total);
    return hit ? (Number.isFinite(hit[0]) ? hit[0] * 1000 : null) : null;
  };
  return { batches: total, p50MsAtMost: q(0.5), p99MsAtMost: q(0.99) };
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
      await publishAll(
        `mqtt://127.0.0.1:${mqttPort}`,
        clients,
        n,
        window,
        (i) => `{"v":${i},"ts":${1_700_000_000_000 + i}}`,
        (i) => `telemetry/d${i % 100}/env`,
      );
      await waitStored(base, n);
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
    offPerSec: off,
    onPerSec: on,
    ratio: round(bestOn / bestOff),
    target: 'ratio ≥ 0.95 and on ≥ 30,000 msg/s (issue 13)',
  };
}
