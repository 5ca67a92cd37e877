import { z } from 'zod';
import { secret } from '../core/config/secret.js';

/**
 * The `inference` section of the one config schema (composed in src/config.ts), and the
 * per-model `config.yaml` schema of the model repository. Defaults live here; kapok.example.yaml and
 * docs/inference.md mirror them.
 */

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

/** Settings every model starts from; a model's config.yaml overrides them one key at a time. */
const modelDefaults = z.strictObject({
  /** Worker threads per loaded version (each holds its own ONNX Runtime session). */
  instances: z.number().int().min(1).max(64).default(1),
  /** ONNX Runtime intra-op threads per session; auto: the CPUs of one NUMA node (core/platform). */
  intraOpThreads: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default('auto'),
  /**
   * Let the intra-op pool's threads spin-wait for work (ONNX Runtime's own default) instead of
   * sleeping. Off here: an idle spinning pool took ~10× the CPU of a sleeping one between runs, CPU
   * the event loop serving HTTP and MQTT on the same cores needs; spinning saves ~10 µs per run.
   */
  intraOpSpinning: z.boolean().default(false),
  /** Requests waiting per version at most; more are refused at once with 429 / RESOURCE_EXHAUSTED. */
  maxQueue: z.number().int().min(1).max(1_000_000).default(1024),
  /** Longest a request may wait and run; past it the client gets 504 and a queued request is dropped. */
  timeoutMs: ms(1, 3_600_000).default(30_000),
  /** V8 heap limit of each worker (MiB); ONNX Runtime's native buffers are outside it. */
  workerMemoryMb: z.number().int().min(16).max(65_536).default(512),
  /**
   * A model whose model.onnx is at most this many bytes (and runs one instance) runs its session on
   * the event-loop thread instead of a worker: for a model that small the thread hand-off costs more
   * than the run. 0: always a worker.
   */
  inlineMaxBytes: z.number().int().min(0).max(1_073_741_824).default(65_536),
});

const version = z.union([z.number().int().min(1), z.string().regex(/^[1-9][0-9]{0,17}$/)]).transform(String);

/** models/<name>/config.yaml. Every key optional: missing ones come from inference.defaults. */
export const modelConfigSchema = z.strictObject({
  /** Largest batch (sum of first dimensions) one execution takes; 0 = the model is not batched. */
  maxBatchSize: z.number().int().min(0).max(65_536).default(0),
  /** Dynamic batching: on when present and maxBatchSize ≥ 2. */
  batching: z
    .strictObject({
      /** Longest the first request of a batch waits for others (microseconds). */
      maxQueueDelayUs: z.number().int().min(0).max(10_000_000).default(500),
      /** Batch sizes dispatched at once without waiting for the delay. */
      preferredBatchSizes: z.array(z.number().int().min(1)).default([]),
    })
    .optional(),
  instances: z.number().int().min(1).max(64).optional(),
  intraOpThreads: z.number().int().min(1).max(64).optional(),
  intraOpSpinning: z.boolean().optional(),
  maxQueue: z.number().int().min(1).max(1_000_000).optional(),
  timeoutMs: ms(1, 3_600_000).optional(),
  workerMemoryMb: z.number().int().min(16).max(65_536).optional(),
  inlineMaxBytes: z.number().int().min(0).max(1_073_741_824).optional(),
  /** Which versions are served: the n highest, all, or the listed ones. Default: latest 1. */
  versionPolicy: z
    .union([
      z.strictObject({ latest: z.number().int().min(1).max(1000) }),
      z.literal('all'),
      z.strictObject({ all: z.strictObject({}) }),
      z.strictObject({ specific: z.array(version).min(1) }),
    ])
    .default({ latest: 1 }),
  /** Expected SHA-256 (hex) of each version's model.onnx; a version may instead hold model.onnx.sha256. */
  sha256: z.record(z.string().regex(/^[1-9][0-9]{0,17}$/), z.string().regex(/^[0-9a-fA-F]{64}$/)).default({}),
});

export type ModelConfig = z.infer<typeof modelConfigSchema>;

/** inference.models.<name>: the keys of config.yaml that Kapok's configuration may override. */
function modelOverrideSchema() {
  const s = modelConfigSchema.shape;
  return z.strictObject({
    maxBatchSize: s.maxBatchSize.removeDefault().optional(),
    batching: s.batching,
    instances: s.instances,
    intraOpThreads: s.intraOpThreads,
    intraOpSpinning: s.intraOpSpinning,
    maxQueue: s.maxQueue,
    timeoutMs: s.timeoutMs,
    workerMemoryMb: s.workerMemoryMb,
    inlineMaxBytes: s.inlineMaxBytes,
    versionPolicy: s.versionPolicy.removeDefault().optional(),
  });
}
export type ModelOverride = z.infer<ReturnType<typeof modelOverrideSchema>>;

export const inferenceSchema = z.strictObject({
  // On by default: it needs nothing outside this machine (docs/configuration.md, "Embedded defaults").
  enabled: z.boolean().default(true),
  /** Model repository: <repository>/<model>/<version>/model.onnx, relative to the working directory. */
  repository: z.string().min(1).default('./models'),
  /** How often the repository is re-read for new, changed or removed versions; 0 = only on request. */
  pollIntervalMs: ms(0, 3_600_000).default(2000),
  /** Largest inference request body (REST) or message (gRPC) accepted, in bytes. */
  maxRequestBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 ** 3)
    .default(64 * 1024 * 1024),
  /** Bearer token for model control (repository load/unload); null: loopback clients only (profile default), no one (gov). */
  adminToken: secret(z.string().min(16)).nullable().default(null),
  defaults: modelDefaults.prefault({}),
  /**
   * Per-model settings that override the model's config.yaml key by key (the brief's
   * `/models/config`): kept in Kapok's configuration, so in etcd with control.source etcd and
   * applied live (a changed model's versions are reloaded beside the serving ones and switched in).
   */
  models: z
    .record(z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/), modelOverrideSchema())
    .default({}),
});

export type InferenceConfig = z.infer<typeof inferenceSchema>;
/** inference.defaults with `auto` resolved to a thread count (capability.ts). */
export type ModelDefaults = Omit<z.infer<typeof modelDefaults>, 'intraOpThreads'> & {
  intraOpThreads: number;
};

/** The settings one version runs with. */
export interface ResolvedModelConfig extends ModelDefaults {
  maxBatchSize: number;
  /** null: no dynamic batching. */
  batching: { maxQueueDelayUs: number; preferredBatchSizes: number[] } | null;
}

export function resolveModelConfig(cfg: ModelConfig, defaults: ModelDefaults): ResolvedModelConfig {
  return {
    instances: cfg.instances ?? defaults.instances,
    intraOpThreads: cfg.intraOpThreads ?? defaults.intraOpThreads,
    intraOpSpinning: cfg.intraOpSpinning ?? defaults.intraOpSpinning,
    maxQueue: cfg.maxQueue ?? defaults.maxQueue,
    timeoutMs: cfg.timeoutMs ?? defaults.timeoutMs,
    workerMemoryMb: cfg.workerMemoryMb ?? defaults.workerMemoryMb,
    inlineMaxBytes: cfg.inlineMaxBytes ?? defaults.inlineMaxBytes,
    maxBatchSize: cfg.maxBatchSize,
    batching: cfg.batching && cfg.maxBatchSize >= 2 ? cfg.batching : null,
  };
}
