import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CircuitState } from './routing/circuit.js';

const STATE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };
// Sub-millisecond (gateway overhead) up to long generations.
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

/**
 * Per-label-set entries found without allocating: one nested Map level per label, in the metric's
 * labelNames order (a joined string key, or prom-client's label hash, costs allocations on every
 * call). Labels are config names (model, target = provider/model), outcomes and status codes, so the
 * trie is bounded by configuration.
 */
function labelTrie<L extends string, E>(names: readonly L[], make: (labels: Record<L, string>) => E) {
  const root = new Map<string, unknown>();
  const last = names.length - 1;
  return (labels: Record<L, string>): E => {
    let node = root;
    for (let i = 0; i < last; i++) {
      const v = labels[names[i] as L];
      let next = node.get(v) as Map<string, unknown> | undefined;
      if (!next) {
        next = new Map();
        node.set(v, next);
      }
      node = next;
    }
    const v = labels[names[last] as L];
    let e = node.get(v) as E | undefined;
    if (e === undefined) {
      e = make({ ...labels });
      node.set(v, e);
    }
    return e;
  };
}

interface Pending<L extends string> {
  labels: Record<L, string>;
  value: number;
  touched: boolean;
}

/**
 * A labelled counter whose increments are summed here and handed to prom-client when it collects
 * (every scrape and every get() runs collect first): prom-client hashes and validates the label
 * object on every inc, which was about 3 % of the gateway's allocations at four counts per request.
 */
function counter<L extends string>(o: {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}) {
  const all: Pending<L>[] = [];
  const entry = labelTrie<L, Pending<L>>(o.labelNames, (labels) => {
    const p = { labels, value: 0, touched: false };
    all.push(p);
    return p;
  });
  new Counter<L>({
    ...o,
    collect() {
      for (const p of all) {
        if (!p.touched) continue;
        this.inc(p.labels, p.value);
        p.value = 0;
        p.touched = false;
      }
    },
  });
  return {
    inc: (labels: Record<L, string>, value = 1): void => {
      if (!(value >= 0 && Number.isFinite(value)))
        throw new TypeError(`counter ${o.name}: increment must be a finite number >= 0, got ${value}`);
      const p = entry(labels);
      p.value += value;
      p.touched = true;
    },
  };
}

function histogram<L extends string>(o: {
  name: string;
  help: string;
  labelNames: readonly L[];
  buckets: number[];
  registers: Registry[];
}) {
  const h = new Histogram<L>(o);
  const child = labelTrie<L, ReturnType<Histogram<L>['labels']>>(o.labelNames, (l) => h.labels(l as never));
  return { observe: (labels: Record<L, string>, value: number): void => child(labels).observe(value) };
}

export function createGatewayMetrics(registry: Registry, circuitStates: () => Record<string, CircuitState>) {
  return {
    requests: counter({
      name: 'kapok_gateway_requests_total',
      help: 'Gateway requests by client model, final target and status code.',
      labelNames: ['endpoint', 'model', 'target', 'status'] as const,
      registers: [registry],
    }),
    attempts: counter({
      name: 'kapok_gateway_upstream_attempts_total',
      help: 'Upstream attempts by target and outcome (ok, http_4xx, http_429, http_5xx, timeout, connect, aborted).',
      labelNames: ['target', 'outcome'] as const,
      registers: [registry],
    }),
    upstreamLatency: histogram({
      name: 'kapok_gateway_upstream_duration_seconds',
      help: 'Time from sending an upstream request to its complete response (or stream end).',
      labelNames: ['target'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    ttft: histogram({
      name: 'kapok_gateway_time_to_first_token_seconds',
      help: 'Streaming: time from receiving the request to the first chunk written to the client.',
      labelNames: ['model', 'target'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    overhead: new Histogram({
      name: 'kapok_gateway_overhead_seconds',
      help: 'Time the gateway itself added: total request time minus time spent waiting on upstreams.',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    tokens: counter({
      name: 'kapok_gateway_tokens_total',
      help: 'Tokens by client model, target and direction (in = prompt, out = completion), from upstream usage.',
      labelNames: ['model', 'target', 'direction'] as const,
      registers: [registry],
    }),
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
