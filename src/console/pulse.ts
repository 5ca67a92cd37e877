import type { Health, Readiness } from '../core/health.js';
import type { Metrics } from '../core/metrics.js';

/**
 * The overview's figures: every `intervalMs`, the HTTP request and error (status ≥ 500) rates by
 * area (the route's first segment: /v1 gateway, /v2 inference, /api/<capability>), from the
 * platform's own request histogram, and the inference queue depth per model (the
 * `kapok_inference_queue_depth` gauge, summed over versions), kept for the last hour; readiness is
 * read only while someone watches. The console reads core's metrics registry and health (metric
 * names are the contract), never another capability's files.
 */

/** The inference capability's gauge: requests waiting per model version. */
export const QUEUE_DEPTH_METRIC = 'kapok_inference_queue_depth';
/** At most this many models per sample (the deepest queues): a sample stays small. */
const MAX_QUEUES = 16;
export interface PulseSample {
  /** Epoch ms. */
  t: number;
  /** area → [requests/s, errors/s, mean latency ms over the interval]. */
  rates: Record<string, [number, number, number]>;
  /** Model → requests waiting in its queue now (all versions); absent without inference. */
  queues?: Record<string, number>;
}

export interface PulseFrame {
  type: 'pulse';
  sample: PulseSample;
  readiness: Readiness | null;
}

export function areaOf(route: string): string {
  if (route.startsWith('/v1')) return 'gateway';
  if (route.startsWith('/v2')) return 'inference';
  const m = /^\/api\/([a-z0-9]+)/.exec(route);
  if (m) return m[1] as string;
  if (route.startsWith('/console')) return 'console';
  return 'platform';
}

export class Pulse {
  readonly #history: PulseSample[] = [];
  readonly #max: number;
  #last = new Map<string, [number, number, number]>();
  #lastT = 0;

  constructor(
    private readonly metrics: Metrics,
    private readonly health: Health,
    readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#max = Math.ceil(3600_000 / intervalMs);
  }

  get history(): readonly PulseSample[] {
    return this.#history;
  }

  /** Totals by area now: [requests, errors, seconds spent]. */
  async #totals(): Promise<Map<string, [number, number, number]>> {
    const out = new Map<string, [number, number, number]>();
    const data = await this.metrics.httpDuration.get();
    for (const v of data.values) {
      const count = v.metricName?.endsWith('_count');
      if (!count && !v.metricName?.endsWith('_sum')) continue;
      const area = areaOf(String(v.labels.route ?? ''));
      const cur = out.get(area) ?? [0, 0, 0];
      if (count) {
        cur[0] += v.value;
        if (Number(v.labels.status_code) >= 500) cur[1] += v.value;
      } else cur[2] += v.value;
      out.set(area, cur);
    }
    return out;
  }

  /** Inference queue depth per model now, from the gauge in the registry (none: inference is off). */
  async #queues(): Promise<Record<string, number> | undefined> {
    const gauge = this.metrics.registry.getSingleMetric(QUEUE_DEPTH_METRIC);
    if (!gauge) return undefined;
    const byModel = new Map<string, number>();
    for (const v of (await gauge.get()).values) {
      const model = String(v.labels.model ?? '');
      byModel.set(model, (byModel.get(model) ?? 0) + v.value);
    }
    return Object.fromEntries(
      [...byModel]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, MAX_QUEUES)
        .sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    );
  }

  /** Takes one sample (rates since the previous one) and keeps the last hour of them. */
  async sample(): Promise<PulseSample> {
    const t = this.now();
    const totals = await this.#totals();
    const dt = this.#lastT ? Math.max(0.001, (t - this.#lastT) / 1000) : 0;
    const rates: Record<string, [number, number, number]> = {};
    for (const [area, [req, err, secs]] of totals) {
      const prev = this.#last.get(area) ?? [req, err, secs];
      const n = req - prev[0];
      rates[area] = dt
        ? [round(n / dt), round((err - prev[1]) / dt), n > 0 ? round(((secs - prev[2]) / n) * 1000) : 0]
        : [0, 0, 0];
    }
    this.#last = totals;
    this.#lastT = t;
    const queues = await this.#queues();
    const s: PulseSample = queues ? { t, rates, queues } : { t, rates };
    this.#history.push(s);
    if (this.#history.length > this.#max) this.#history.splice(0, this.#history.length - this.#max);
    return s;
  }

  readiness(): Promise<Readiness> {
    return this.health.readiness();
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
