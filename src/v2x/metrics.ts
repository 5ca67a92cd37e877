import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Dispatcher } from './dispatch.js';
import { DROP_REASONS, type Engine, MESSAGE_KINDS } from './engine.js';
import { WARNING_TYPES } from './warning.js';

export interface V2xMetrics {
  decisionSeconds: Histogram;
  /** Recent decision latencies (ms), for GET /api/v2x/stats percentiles. */
  recent: Float64Array;
  recentCount: number;
  observe(ms: number): void;
}

/**
 * The hot path counts in plain numbers (Engine, Dispatcher); these collectors copy them at scrape
 * time, so a message costs no prom-client label lookup.
 */
export function createV2xMetrics(registry: Registry, engine: Engine, dispatch: () => Dispatcher): V2xMetrics {
  const registers = [registry];
  new Counter({
    name: 'kapok_v2x_messages_total',
    help: 'V2X messages taken in, by type (bsm, spat, map, rsi, rsm).',
    labelNames: ['type'],
    registers,
    collect() {
      this.reset();
      for (const k of MESSAGE_KINDS) this.inc({ type: k }, engine.intake[k]);
    },
  });
  new Counter({
    name: 'kapok_v2x_dropped_total',
    help: 'V2X messages dropped, by reason (undecodable, stale, duplicate, outside, capacity, unsupported, spoofed).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const r of DROP_REASONS) this.inc({ reason: r }, engine.drops[r]);
    },
  });
  new Counter({
    name: 'kapok_v2x_warnings_total',
    help: 'Warnings raised, by type (FCW, ICW, EBW, RLVW, GLOSA).',
    labelNames: ['type'],
    registers,
    collect() {
      this.reset();
      for (const t of WARNING_TYPES) this.inc({ type: t }, engine.warningsByType[t] ?? 0);
    },
  });
  new Counter({
    name: 'kapok_v2x_strategies_total',
    help: 'Strategies by outcome: created, acked, expired.',
    labelNames: ['outcome'],
    registers,
    collect() {
      this.reset();
      const d = dispatch();
      this.inc({ outcome: 'created' }, d.created);
      this.inc({ outcome: 'acked' }, d.acked);
      this.inc({ outcome: 'expired' }, d.expired);
    },
  });
  new Counter({
    name: 'kapok_v2x_acks_ignored_total',
    help: 'Strategy PUBACKs and application acks ignored: not from the session of the strategy vehicle.',
    registers,
    collect() {
      this.reset();
      this.inc(dispatch().ignoredAcks);
    },
  });
  new Gauge({
    name: 'kapok_v2x_strategies_pending',
    help: 'Strategies published or waiting, not yet acknowledged nor expired.',
    registers,
    collect() {
      this.set(dispatch().pending);
    },
  });
  new Gauge({
    name: 'kapok_v2x_vehicles',
    help: 'Vehicles tracked.',
    registers,
    collect() {
      this.set(engine.vehicles.size);
    },
  });
  const decisionSeconds = new Histogram({
    name: 'kapok_v2x_decision_seconds',
    help: 'Decision latency: message intake to strategy published.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers,
  });
  const m: V2xMetrics = {
    decisionSeconds,
    recent: new Float64Array(10_000),
    recentCount: 0,
    observe(ms) {
      decisionSeconds.observe(ms / 1000);
      m.recent[m.recentCount % m.recent.length] = ms;
      m.recentCount++;
    },
  };
  return m;
}

/** p-quantile (0..1) of the recent latencies, ms. */
export function quantile(m: V2xMetrics, p: number): number | null {
  const n = Math.min(m.recentCount, m.recent.length);
  if (n === 0) return null;
  const a = Array.from(m.recent.subarray(0, n)).sort((x, y) => x - y);
  return a[Math.min(n - 1, Math.floor(p * n))] as number;
}
