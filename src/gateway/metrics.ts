import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CircuitState } from './routing/circuit.js';

const STATE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };
// Sub-millisecond (gateway overhead) up to long generations.
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

/**
 * Per-label-set children cached on the hot path: prom-client hashes the label object on every
 * inc/observe otherwise. Labels are config names (model, target = provider/model), outcomes and
 * status codes, so the caches are bounded by configuration.
 */
function childCache<L extends string, C>(make: (labels: Record<L, string>) => C) {
  const children = new Map<string, C>();
  return (labels: Record<L, string>): C => {
    const k = Object.values(labels).join('\u0000');
    let child = children.get(k);
    if (!child) {
      child = make(labels);
      children.set(k, child);
    }
    return child;
  };
}

function counter<L extends string>(c: Counter<L>) {
  const child = childCache<L, ReturnType<Counter<L>['labels']>>((l) => c.labels(l as never));
  return { inc: (labels: Record<L, string>, value = 1): void => child(labels).inc(value) };
}

function histogram<L extends string>(h: Histogram<L>) {
  const child = childCache<L, ReturnType<Histogram<L>['labels']>>((l) => h.labels(l as never));
  return { observe: (labels: Record<L, string>, value: number): void => child(labels).observe(value) };
}

export function createGatewayMetrics(registry: Registry, circuitStates: () => Record<string, CircuitState>) {
  return {
    requests: counter(
      new Counter({
        name: 'kapok_gateway_requests_total',
        help: 'Gateway requests by client model, final target and status code.',
        labelNames: ['endpoint', 'model', 'target', 'status'] as const,
        registers: [registry],
      }),
    ),
    attempts: counter(
      new Counter({
        name: 'kapok_gateway_upstream_attempts_total',
        help: 'Upstream attempts by target and outcome (ok, http_4xx, http_429, http_5xx, timeout, connect, aborted).',
        labelNames: ['target', 'outcome'] as const,
        registers: [registry],
      }),
    ),
    upstreamLatency: histogram(
      new Histogram({
        name: 'kapok_gateway_upstream_duration_seconds',
        help: 'Time from sending an upstream request to its complete response (or stream end).',
        labelNames: ['target'] as const,
        buckets: LATENCY_BUCKETS,
        registers: [registry],
      }),
    ),
    ttft: histogram(
      new Histogram({
        name: 'kapok_gateway_time_to_first_token_seconds',
        help: 'Streaming: time from receiving the request to the first chunk written to the client.',
        labelNames: ['model', 'target'] as const,
        buckets: LATENCY_BUCKETS,
        registers: [registry],
      }),
    ),
    overhead: new Histogram({
      name: 'kapok_gateway_overhead_seconds',
      help: 'Time the gateway itself added: total request time minus time spent waiting on upstreams.',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    tokens: counter(
      new Counter({
        name: 'kapok_gateway_tokens_total',
        help: 'Tokens by client model, target and direction (in = prompt, out = completion), from upstream usage.',
        labelNames: ['model', 'target', 'direction'] as const,
        registers: [registry],
      }),
    ),
    usageDropped: new Counter({
      name: 'kapok_gateway_usage_dropped_total',
      help: 'Usage records dropped because the write queue was full (gateway.usage.maxQueue).',
      registers: [registry],
    }),
    quotaFailOpen: new Counter({
      name: 'kapok_gateway_quota_fail_open_total',
      help: 'Requests admitted without counting because the quota backend was down (failOpen).',
      registers: [registry],
    }),
    circuit: new Gauge({
      name: 'kapok_gateway_circuit_state',
      help: 'Circuit state per target: 0 closed, 1 half-open, 2 open.',
      labelNames: ['target'] as const,
      registers: [registry],
      collect() {
        for (const [target, s] of Object.entries(circuitStates())) this.set({ target }, STATE_VALUE[s]);
      },
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
