import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Triton-style inference metrics, labelled by model and version. */
export interface InferenceMetrics {
  success: Counter<'model' | 'version'>;
  failure: Counter<'model' | 'version' | 'reason'>;
  inferences: Counter<'model' | 'version'>;
  executions: Counter<'model' | 'version'>;
  requestSeconds: Histogram<'model' | 'version'>;
  queueSeconds: Histogram<'model' | 'version'>;
  computeSeconds: Histogram<'model' | 'version'>;
  queueDepth: Gauge<'model' | 'version'>;
  loaded: Gauge;
  workerRestarts: Counter<'model' | 'version'>;
  loadFailures: Counter<'model' | 'reason'>;
}

const LATENCY = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
];

export function createInferenceMetrics(registry: Registry): InferenceMetrics {
  const registers = [registry];
  const mv = ['model', 'version'] as const;
  return {
    success: new Counter({
      name: 'kapok_inference_request_success_total',
      help: 'Inference requests answered with outputs.',
      labelNames: mv,
      registers,
    }),
    failure: new Counter({
      name: 'kapok_inference_request_failure_total',
      help: 'Inference requests that failed, by reason (bad_request, queue_full, timeout, crashed, run_failed, not_ready).',
      labelNames: [...mv, 'reason'],
      registers,
    }),
    inferences: new Counter({
      name: 'kapok_inference_count_total',
      help: 'Inferences run (batch rows: a request with first dimension 8 counts 8 when batched).',
      labelNames: mv,
      registers,
    }),
    executions: new Counter({
      name: 'kapok_inference_exec_count_total',
      help: 'Model executions (one per batch).',
      labelNames: mv,
      registers,
    }),
    requestSeconds: new Histogram({
      name: 'kapok_inference_request_duration_seconds',
      help: 'Time from a request reaching the model version to its outputs (queue and compute).',
      labelNames: mv,
      buckets: LATENCY,
      registers,
    }),
    queueSeconds: new Histogram({
      name: 'kapok_inference_queue_duration_seconds',
      help: 'Time requests waited in the queue.',
      labelNames: mv,
      buckets: LATENCY,
      registers,
    }),
    computeSeconds: new Histogram({
      name: 'kapok_inference_compute_duration_seconds',
      help: 'Time an execution spent in the worker (tensors in, model run, outputs out).',
      labelNames: mv,
      buckets: LATENCY,
      registers,
    }),
    queueDepth: new Gauge({
      name: 'kapok_inference_queue_depth',
      help: 'Requests waiting per model version.',
      labelNames: mv,
      registers,
    }),
    loaded: new Gauge({
      name: 'kapok_inference_models_loaded',
      help: 'Model versions loaded and ready.',
      registers,
    }),
    workerRestarts: new Counter({
      name: 'kapok_inference_worker_restarts_total',
      help: 'Workers that died and were replaced.',
      labelNames: mv,
      registers,
    }),
    loadFailures: new Counter({
      name: 'kapok_inference_load_failures_total',
      help: 'Model version loads that failed (checksum, load, warmup, config); the old version keeps serving.',
      labelNames: ['model', 'reason'],
      registers,
    }),
  };
}
