import { type V2xConfig, v2xSchema } from '../config.js';
import { Engine } from '../engine.js';
import { encodeFrame, type Format } from '../frames.js';
import type { Warning } from '../warning.js';
import type { Scenario } from './scenario.js';
import { type Score, score } from './score.js';
import { SIM_ORIGIN, World } from './world.js';

export interface ReplayOptions {
  background?: number;
  format?: Format;
  stepMs?: number;
  /** Merged over the v2x section (risk thresholds, …). */
  config?: Record<string, unknown>;
  /** Epoch ms of t = 0 (default now). */
  startMs?: number;
}

export interface ReplayResult {
  warnings: Warning[];
  messages: number;
  score: Score;
  world: World;
  engine: Engine;
}

/** The v2x config a simulated world runs under: origin and one zone covering it. */
export function simConfig(world: World, over: Record<string, unknown> = {}): V2xConfig {
  return v2xSchema.parse({
    enabled: true,
    origin: SIM_ORIGIN,
    zones: [{ id: 'sim', geometry: world.zone() }],
    maxVehicles: 1_000_000,
    ...over,
  });
}

/**
 * Runs scenarios through the engine in process on a simulated clock (no MQTT): every message
 * encoded and decoded as on the wire, then scored against the scenarios' ground truth.
 */
export function replay(scenarios: Scenario[], o: ReplayOptions = {}): ReplayResult {
  const world = new World({ scenarios, background: o.background ?? 0 });
  const stepMs = o.stepMs ?? 100;
  const start = o.startMs ?? Date.now();
  let now = start;
  const warnings: Warning[] = [];
  const engine = new Engine({
    cfg: simConfig(world, o.config),
    now: () => now,
    onWarning: (rw) => warnings.push(rw.warning),
  });
  const format = o.format ?? 'uper';
  let messages = 0;
  const feed = (f: ReturnType<World['map']>) => {
    if (!f) return;
    engine.handlePayload(encodeFrame(f, format), format, performance.now());
    messages++;
  };
  const steps = Math.round((world.durationS * 1000) / stepMs);
  for (let k = 0; k <= steps; k++) {
    const tS = (k * stepMs) / 1000;
    now = start + k * stepMs;
    if (k > 0) world.step(tS, stepMs / 1000);
    if (k % 10 === 0) feed(world.map());
    feed(world.spat(now, tS));
    for (let i = 0; i < world.vehicles.length; i++) feed(world.bsm(i, now));
  }
  return {
    warnings,
    messages,
    engine,
    world,
    score: score(
      scenarios,
      world.ids,
      warnings.map((w) => ({ type: w.type, vehicles: w.vehicles })),
    ),
  };
}
