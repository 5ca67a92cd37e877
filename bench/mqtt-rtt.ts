import { spawn } from 'node:child_process';
import mqtt, { type MqttClient } from 'mqtt';
import { startWorker } from '../src/core/worker.js';
import type { FromObu, ObuInit, ToObu } from '../src/v2x/sim/obu-worker.js';
import { reportPinning, root, stop } from './lib.js';

/**
 * The floor under the V2X end-to-end latency: a bare MQTT round trip through the same broker at
 * the same rate, driven the way simulate() drives the V2X run. Per tick, `background` messages and
 * `timed` messages of `bytes` bytes (the size of a UPER BSM), spread over 10 slices, each timed
 * one at a random place among its slice's background messages; 4 publishing connections (QoS 0).
 * An echo client (a child process pinned where Kapok is, core 0, as the engine would be) takes
 * every message and answers the timed ones on a reply topic at QoS 1 (as strategies are sent); the
 * receiver, simulate()'s OBU worker thread, times each answer against its publish.
 */
export interface RttOptions {
  url: string;
  background: number;
  timed: number;
  rateHz: number;
  bytes: number;
  seconds: number;
  warmupS: number;
}

const ECHO = `
const mqtt = require('mqtt');
const [url, prefix] = process.argv.slice(1);
const c = mqtt.connect(url, { reconnectPeriod: 0, clientId: prefix + '-echo' });
c.on('connect', () => {
  c.stream.setNoDelay?.(true);
  c.subscribe(prefix + '/+/ping', { qos: 0 }, (err) => process.stdout.write(err ? 'error ' + err.message + '\\n' : 'ready\\n'));
});
c.on('error', (e) => { process.stdout.write('error ' + e.message + '\\n'); });
c.on('message', (_t, p) => { if (p[0] === 84) c.publish(prefix + '/obu/pong', p, { qos: 1 }); });
process.on('SIGTERM', () => c.end(false, () => process.exit(0)));
`;

function quant(a: number[], p: number): number | null {
  if (a.length === 0) return null;
  const s = [...a].sort((x, y) => x - y);
  return Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) * 1000) / 1000;
}

export async function mqttRoundTrip(o: RttOptions) {
  const prefix = `bench-rtt-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  // From the project root, so the echo's require('mqtt') finds node_modules; its readiness is
  // checked through the broker (a probe answered) rather than read from its output.
  const echo = spawn('taskset', ['-c', '0', process.execPath, '-e', ECHO, o.url, prefix], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const pubs: MqttClient[] = [];
  const obu = startWorker(new URL('../src/v2x/sim/simulate.ts', import.meta.url), 'obu-worker', {
    workerData: {
      url: o.url,
      id: `${prefix}-obu`,
      topic: `${prefix}/+/pong`,
      password: '',
    } satisfies ObuInit,
  });
  const sentAt = new Map<number, number>();
  const lat: number[] = [];
  let received = 0;
  let answered = 0;
  let warmEnd = Number.POSITIVE_INFINITY;
  try {
    await new Promise<void>((resolve, reject) => {
      obu.on('message', (m: FromObu) => {
        if ('payload' in m) {
          received++;
          const seq = Number.parseInt(m.payload.slice(1, 11), 10);
          const t = sentAt.get(seq);
          if (t !== undefined) answered++;
          if (t !== undefined && t >= warmEnd) lat.push(m.at - t);
          sentAt.delete(seq);
        } else if ('ready' in m && m.ready) resolve();
        else if ('error' in m && m.error) reject(new Error(`round-trip receiver: ${m.error}`));
      });
      obu.once('error', reject);
    });
    for (let i = 0; i < 4; i++) {
      const c = mqtt.connect(o.url, { reconnectPeriod: 0, clientId: `${prefix}-pub${i}` });
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
      });
      c.on('error', () => {});
      (c.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
      pubs.push(c);
    }
    const pinning = reportPinning('mqtt round trip', { echo: echo.pid, publishers: process.pid });
    // Until the echo answers a probe, it is not subscribed yet.
    const probeBy = Date.now() + 10_000;
    while (received === 0) {
      if (echo.exitCode !== null || Date.now() > probeBy)
        throw new Error(`bench mqtt-rtt: the echo client did not answer through ${o.url}`);
      (pubs[0] as MqttClient).publish(`${prefix}/probe/ping`, `T${String(0).padStart(10, '0')}`, { qos: 0 });
      await new Promise((r) => setTimeout(r, 50));
    }
    const pad = (s: string) => s.padEnd(Math.max(o.bytes, 12), ' ');
    const bg = pad(`B${'0'.repeat(10)}`);
    const SLICES = 10;
    const stepMs = 1000 / o.rateHz;
    const sliceMs = stepMs / SLICES;
    const phases = Array.from({ length: o.timed }, () => Math.floor(Math.random() * SLICES));
    let seq = 1;
    let sent = 0;
    let lateSlices = 0;
    const t0 = performance.now();
    warmEnd = performance.timeOrigin + t0 + o.warmupS * 1000;
    const end = t0 + (o.warmupS + o.seconds) * 1000;
    const publish = (i: number, payload: string) => {
      (pubs[i % 4] as MqttClient).publish(`${prefix}/v${i % 4}/ping`, payload, { qos: 0 });
      sent++;
    };
    const sendTimed = (i: number) => {
      const s = seq++;
      sentAt.set(s, performance.timeOrigin + performance.now());
      publish(i, pad(`T${String(s).padStart(10, '0')}`));
    };
    for (let tick = 0, slice = 0; performance.now() < end; ) {
      const sliceAt = t0 + tick * stepMs + slice * sliceMs;
      const wait = sliceAt - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const inSlice = Math.max(0, Math.ceil((o.background - slice) / SLICES));
      const timed: [number, number][] = [];
      for (let i = 0; i < phases.length; i++)
        if (phases[i] === slice) timed.push([Math.floor(Math.random() * (inSlice + 1)), i]);
      timed.sort((a, b) => a[0] - b[0]);
      let next = 0;
      for (let i = slice, k = 0; i < o.background; i += SLICES, k++) {
        while (next < timed.length && (timed[next] as [number, number])[0] <= k)
          sendTimed((timed[next++] as [number, number])[1]);
        publish(i, bg);
      }
      while (next < timed.length) sendTimed((timed[next++] as [number, number])[1]);
      if (performance.now() - sliceAt > sliceMs) lateSlices++;
      if (sentAt.size > 100_000) sentAt.clear();
      if (++slice === SLICES) {
        slice = 0;
        tick++;
      }
    }
    const durationS = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // the last answers
    const timedSent = seq - 1;
    return {
      offeredPerSec: Math.round((o.background + o.timed) * o.rateHz),
      sentPerSec: Math.round(sent / durationS),
      lateSlices,
      timedSent,
      answered,
      pinning,
      roundTripMs: { p50: quant(lat, 0.5), p99: quant(lat, 0.99), samples: lat.length },
    };
  } finally {
    await Promise.all(pubs.map((c) => c.endAsync().catch(() => {})));
    obu.postMessage('stop' satisfies ToObu);
    await new Promise((r) => setTimeout(r, 100));
    await obu.terminate();
    await stop(echo);
  }
}
