import mqtt, { type MqttClient } from 'mqtt';
import { startWorker } from '../../core/worker.js';
import { encodeFrame, type Format, type MessageFrame } from '../frames.js';
import type { FromObu, ObuInit, ToObu } from './obu-worker.js';
import type { Scenario } from './scenario.js';
import { type Observed, type Score, score } from './score.js';
import { World } from './world.js';

export interface SimulateOptions {
  url: string;
  username?: string;
  password?: string;
  /** Background vehicles (each sends at rateHz). */
  vehicles: number;
  rateHz: number;
  durationS: number;
  scenarios: Scenario[];
  /** Copies of the scenario set run side by side each cycle (more latency samples); default 1. */
  copies?: number;
  format: Format;
  /** Publishing connections. */
  clients?: number;
  /** Topic of vehicle messages: v2x/<client>/bsm etc. */
  topicPrefix?: string;
  onProgress?: (line: string) => void;
  /**
   * Seconds sent first and not timed (JIT warm-up, every vehicle's first contact), before
   * durationS of measured traffic; default 0. onWarm runs once when they are over.
   */
  warmupS?: number;
  onWarm?: () => void;
  /** Ends the run early (kapok demo's Ctrl-C); the report covers what was sent. */
  signal?: AbortSignal;
}

export interface SimulateReport {
  durationS: number;
  offeredPerSec: number;
  sent: number;
  sentPerSec: number;
  /** Slices (a tenth of a tick) whose messages could not all be sent in time. */
  lateTicks: number;
  strategies: number;
  /** OBU side: BSM published → strategy received, for the BSM that triggered it (ms), after warm-up. */
  endToEndMs: { p50: number | null; p99: number | null; samples: number };
  /** The same, warm-up included. */
  endToEndAllMs: { p50: number | null; p99: number | null; samples: number };
  score: Score;
  cycles: number;
}

function quant(a: number[], p: number): number | null {
  if (a.length === 0) return null;
  const s = [...a].sort((x, y) => x - y);
  return Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) * 1000) / 1000;
}

async function connect(o: SimulateOptions, id: string): Promise<MqttClient> {
  const c = mqtt.connect(o.url, {
    clientId: id,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...(o.username ? { username: o.username, password: o.password ?? '' } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  c.on('error', () => {});
  // Small packets at once (Nagle would hold them up to 40 ms and skew the latency figures).
  (c.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
  return c;
}

/**
 * Drives MQTT traffic: background vehicles on the road grid plus the scripted scenarios, rerun
 * every cycle with fresh vehicle ids, all at rateHz; one OBU connection takes every strategy
 * (v2x/+/strategy, QoS 1), times it against the triggering BSM and scores detection against the
 * scenarios' ground truth.
 */
/** `copies` copies of a scenario set, renamed (-c0, -c1, …) so their vehicles stay apart. */
export function replicate(scenarios: Scenario[], copies: number): Scenario[] {
  const n = Math.max(1, Math.floor(copies));
  if (n === 1) return scenarios;
  // Intersection ids moved per copy too: one copy's MAP/SPAT must not replace another's.
  return Array.from({ length: n }, (_, c) =>
    scenarios.map((x) => ({
      ...x,
      name: `${x.name}-c${c}`,
      signals: x.signals.map((g) => ({ ...g, intersection: (g.intersection + c * 1000) % 65536 })),
    })),
  ).flat();
}

export async function simulate(o: SimulateOptions): Promise<SimulateReport> {
  if (!(o.rateHz > 0 && o.rateHz <= 100)) throw new Error('simulate: --rate must be in (0, 100] Hz');
  if (!(o.vehicles >= 0 && Number.isInteger(o.vehicles))) throw new Error('simulate: --vehicles must be ≥ 0');
  const prefix = o.topicPrefix ?? 'v2x';
  const n = Math.max(1, o.clients ?? 4);
  const tag = Math.random().toString(36).slice(2, 8);
  const pubs = await Promise.all(Array.from({ length: n }, (_, i) => connect(o, `sim-${tag}-${i}`)));
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const allLatencies: number[] = [];
  const warmupMs = Math.max(0, o.warmupS ?? 0) * 1000;
  // Absolute time (timeOrigin-based, as sentAt) after which BSMs are timed; set when sending starts.
  let warmEnd = Number.POSITIVE_INFINITY;
  const observed = new Map<number, Observed[]>();
  let strategies = 0;
  // This one connection is no vehicle's own session, so its PUBACKs settle nothing (issue 13) and
  // Kapok retries each strategy until expiry: only the first copy of a strategy id is timed.
  const seenIds = new Set<string>();
  const obu = await startObu(o, `sim-${tag}-obu`, `${prefix}/+/strategy`, (at, payload) => {
    let s: {
      id?: string;
      warningType?: string;
      vehicles?: string[];
      trigger?: { vehicle: string; msgCnt: number };
    };
    try {
      s = JSON.parse(payload);
    } catch {
      return;
    }
    if (s.id !== undefined) {
      if (seenIds.has(s.id)) return;
      if (seenIds.size >= 1_000_000) seenIds.clear();
      seenIds.add(s.id);
    }
    strategies++;
    const t = s.trigger ? sentAt.get(`${s.trigger.vehicle}:${s.trigger.msgCnt}`) : undefined;
    if (t !== undefined) {
      allLatencies.push(at - t);
      if (t >= warmEnd) latencies.push(at - t);
    }
    const v = s.vehicles ?? [];
    const run = Number.parseInt((v[0] ?? '').slice(0, 4), 16);
    const list = observed.get(run) ?? [];
    list.push({ type: s.warningType ?? '?', vehicles: v });
    observed.set(run, list);
  });

  const scenarios = replicate(o.scenarios, o.copies ?? 1);
  const stepMs = 1000 / o.rateHz;
  const background = new World({ scenarios: [], background: o.vehicles, runId: 0 });
  const worlds: World[] = [];
  const starts: number[] = [];
  let scen: World | null = null;
  let scenStart = 0;
  let cycle = 0;
  let sent = 0;
  let lateTicks = 0;
  const t0 = performance.now();
  const end = t0 + warmupMs + o.durationS * 1000;
  warmEnd = performance.timeOrigin + t0 + warmupMs;
  let warm = warmupMs === 0;
  if (warm) o.onWarm?.();
  const send = (f: MessageFrame, kind: string, i: number) => {
    const c = pubs[i % n] as MqttClient;
    c.publish(`${prefix}/sim${i % n}/${kind}`, encodeFrame(f, o.format), { qos: 0 });
    sent++;
  };
  // Each tick is cut into slices and every background vehicle sends in its own slice (as
  // independent OBUs with their own 10 Hz phase would), not all in one burst. The timed (scenario)
  // vehicles too: each gets a random slice per cycle and, every tick, a random place among that
  // slice's background messages, so its BSM queues behind traffic like any other instead of
  // going out ahead of each burst (which made the OBU-side latency optimistic).
  const SLICES = 10;
  const sliceMs = stepMs / SLICES;
  let phases: number[] = [];
  const sendTimed = (w: World, i: number, now: number) => {
    const f = w.bsm(i, now) as { bsmFrame: { id: string; msgCnt: number } };
    sentAt.set(`${f.bsmFrame.id}:${f.bsmFrame.msgCnt}`, performance.timeOrigin + performance.now());
    send(f as MessageFrame, 'bsm', i);
  };
  let tick = 0;
  let slice = 0;
  let lastProgress = t0;
  while (performance.now() < end && !o.signal?.aborted) {
    const sliceAt = t0 + tick * stepMs + slice * sliceMs;
    const wait = sliceAt - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const tS = (tick * stepMs) / 1000;
    const now = Date.now();
    if (slice === 0) {
      if (scenarios.length && (!scen || tS - scenStart > scen.durationS + 1)) {
        cycle++;
        // The last cycle's vehicles stay in Kapok's state for v2x.vehicleTtlMs after their last
        // BSM: alternate cycles 1 km apart so new vehicles never meet (and falsely warn about) them.
        scen = new World({ scenarios, background: 0, runId: cycle, offsetNorthM: (cycle % 2) * 1000 });
        worlds[cycle] = scen;
        scenStart = tS;
        starts[cycle] = tS;
        phases = scen.vehicles.map(() => Math.floor(Math.random() * SLICES));
        const m = scen.map();
        if (m) send(m, 'map', 0);
      } else if (tick > 0) scen?.step(tS - scenStart, stepMs / 1000);
      if (tick > 0) background.step(tS, stepMs / 1000);
      if (scen) {
        const sp = scen.spat(now, tS - scenStart);
        if (sp) send(sp, 'spat', 0);
      }
    }
    const inSlice = Math.max(0, Math.ceil((background.vehicles.length - slice) / SLICES));
    // [place among this slice's background messages, scenario vehicle], in sending order.
    const timed: [number, number][] = [];
    if (scen)
      for (let i = 0; i < phases.length; i++)
        if (phases[i] === slice) timed.push([Math.floor(Math.random() * (inSlice + 1)), i]);
    timed.sort((a, b) => a[0] - b[0]);
    let next = 0;
    for (let i = slice, k = 0; i < background.vehicles.length; i += SLICES, k++) {
      while (next < timed.length && (timed[next] as [number, number])[0] <= k)
        sendTimed(scen as World, (timed[next++] as [number, number])[1], now);
      send(background.bsm(i, now), 'bsm', i);
    }
    while (next < timed.length) sendTimed(scen as World, (timed[next++] as [number, number])[1], now);
    if (performance.now() - sliceAt > sliceMs) lateTicks++;
    if (!warm && performance.now() >= t0 + warmupMs) {
      warm = true;
      o.onWarm?.();
    }
    if (sentAt.size > 100_000) sentAt.clear();
    if (++slice === SLICES) {
      slice = 0;
      tick++;
    }
    if (o.onProgress && performance.now() - lastProgress > 2000) {
      lastProgress = performance.now();
      o.onProgress(`sent ${sent}, strategies ${strategies}`);
    }
  }
  const durationS = (performance.now() - t0) / 1000;
  // Let the last strategies arrive.
  await new Promise((r) => setTimeout(r, 500));
  await Promise.all(pubs.map((c) => c.endAsync()));
  await obu.stop();

  const all: Score = {
    expected: 0,
    detected: 0,
    recall: 1,
    warnings: 0,
    falseWarnings: 0,
    falseRate: 0,
    missed: [],
    unexpected: [],
  };
  // Cycles cut short by the end of the run are not scored.
  let complete = 0;
  while (
    complete < cycle &&
    (starts[complete + 1] as number) + (worlds[complete + 1] as World).durationS <= durationS
  )
    complete++;
  for (let c = 1; c <= complete; c++) {
    const w = worlds[c] as World;
    const s = score(scenarios, w.ids, observed.get(c) ?? []);
    all.expected += s.expected;
    all.detected += s.detected;
    all.warnings += s.warnings;
    all.falseWarnings += s.falseWarnings;
    all.missed.push(...s.missed.map((m) => `cycle ${c}: ${m}`));
    all.unexpected.push(...s.unexpected);
  }
  const bg = new Set((observed.get(0) ?? []).map((x) => `${x.type}|${x.vehicles.join('|')}`));
  all.warnings += bg.size;
  all.falseWarnings += bg.size;
  all.unexpected.push(...[...bg].slice(0, 10).map((k) => `background: ${k}`));
  all.recall = all.expected === 0 ? 1 : all.detected / all.expected;
  all.falseRate = all.warnings === 0 ? 0 : all.falseWarnings / all.warnings;
  all.missed = all.missed.slice(0, 20);
  all.unexpected = all.unexpected.slice(0, 20);
  const perTick = o.vehicles + scenarios.reduce((k, s) => k + s.vehicles.length, 0);
  return {
    durationS: Math.round(durationS * 100) / 100,
    offeredPerSec: Math.round(perTick * o.rateHz),
    sent,
    sentPerSec: Math.round(sent / durationS),
    lateTicks,
    strategies,
    endToEndMs: { p50: quant(latencies, 0.5), p99: quant(latencies, 0.99), samples: latencies.length },
    endToEndAllMs: {
      p50: quant(allLatencies, 0.5),
      p99: quant(allLatencies, 0.99),
      samples: allLatencies.length,
    },
    score: all,
    cycles: complete,
  };
}

/** The OBU (obu-worker.ts) subscribes to every strategy on its own thread. */
async function startObu(
  o: SimulateOptions,
  id: string,
  topic: string,
  onStrategy: (at: number, payload: string) => void,
): Promise<{ stop: () => Promise<void> }> {
  const init: ObuInit = { url: o.url, id, topic, username: o.username, password: o.password ?? '' };
  const worker = startWorker(import.meta.url, 'obu-worker', { workerData: init });
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (m: FromObu) => {
      if ('payload' in m) onStrategy(m.at, m.payload);
      else if ('ready' in m && m.ready) resolve();
      else if ('error' in m && m.error) reject(new Error(`simulator OBU: ${m.error}`));
    });
    worker.once('error', reject);
  });
  return {
    stop: async () => {
      worker.postMessage('stop' satisfies ToObu);
      await Promise.race([
        new Promise((r) => worker.on('message', (m: FromObu) => 'stopped' in m && r(null))),
        new Promise((r) => setTimeout(r, 2000)),
      ]);
      await worker.terminate();
    },
  };
}
