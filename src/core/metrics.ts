import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/**
 * One Prometheus registry per Kapok instance (not prom-client's global, so tests can run several
 * instances in one process). Capabilities add their own metrics to `registry`, prefixed `kapok_<area>_`.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly httpDuration: Histogram<'route' | 'method' | 'status_code'>;
  /** Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
}

export function createMetrics(opts: { defaultLabels?: Record<string, string> } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultLabels) registry.setDefaultLabels(opts.defaultLabels);
  collectDefaultMetrics({ register: registry, prefix: 'kapok_' });
  // prom-client also exports gauges named *_total, which Prometheus reserves for counters (promtool
  // rejects them). Each only sums its labelled twin (kapok_nodejs_active_handles etc.), so drop it.
  for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) {
    registry.removeSingleMetric(`kapok_nodejs_${name}`);
  }
  const httpDuration = new Histogram({
    name: 'kapok_http_request_duration_seconds',
    help: 'HTTP request duration by route template (never the raw URL), method and status code.',
    labelNames: ['route', 'method', 'status_code'] as const,
    // From sub-millisecond probes to long LLM streams.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  return {
    registry,
    httpDuration,
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}
