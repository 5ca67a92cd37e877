import { isKapokError, KapokError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { InferDone, InferJob, VersionRunner } from './execution/runner.js';
import type { InferenceMetrics } from './metrics.js';
import type { Repository } from './models/repository.js';
import type { TensorMeta } from './tensors/datatypes.js';

/**
 * What REST and gRPC share: model lookup, metadata, and one inference with its deadline and metrics.
 * Protocol code only turns its wire form into tensors (`build`) and the result back.
 */

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMeta[];
  outputs: TensorMeta[];
  /** Kapok extension: each version's state and last load error (a failed hot update shows here). */
  state: Array<{ version: string; state: string; reason: string | null }>;
}

const REASONS: Record<string, string> = {
  KAPOK_INFERENCE_BAD_REQUEST: 'bad_request',
  KAPOK_INFERENCE_QUEUE_FULL: 'queue_full',
  KAPOK_INFERENCE_TIMEOUT: 'timeout',
  KAPOK_INFERENCE_WORKER_CRASHED: 'crashed',
  KAPOK_INFERENCE_RUN_FAILED: 'run_failed',
  KAPOK_INFERENCE_MODEL_NOT_READY: 'not_ready',
};

export class InferenceService {
  constructor(
    readonly repo: Repository,
    private readonly metrics: InferenceMetrics,
    private readonly logger: Logger,
  ) {}

  metadata(name: string, version?: string): ModelMetadata {
    const { version: v, runner } = this.repo.resolve(name, version);
    const m = this.repo.model(name);
    const states = m ? [...m.versions.values()] : [];
    return {
      name,
      versions: version ? [v] : states.filter((s) => s.state === 'READY').map((s) => s.version),
      platform: 'onnxruntime_onnx',
      inputs: runner.inputs,
      outputs: runner.outputs,
      state: states.map((s) => ({ version: s.version, state: s.state, reason: s.reason })),
    };
  }

  /** Ready: 'ok', or the reason it is not (unknown model/version throws 404). */
  ready(name: string, version?: string): true | KapokError {
    try {
      this.repo.resolve(name, version);
      return true;
    } catch (err) {
      if (isKapokError(err, 'KAPOK_INFERENCE_MODEL_NOT_READY')) return err;
      throw err;
    }
  }

  /**
   * Runs one request: `build` checks the wire form against the model and returns the job maker (the
   * deadline comes from the request's `timeoutMs`, capped by the model's). Errors are KapokErrors
   * with catalogue codes.
   */
  async infer(
    name: string,
    version: string | undefined,
    build: (runner: VersionRunner) => Promise<{ job: (deadline: number) => InferJob; timeoutMs?: number }>,
  ): Promise<{ version: string; runner: VersionRunner; done: InferDone }> {
    let { version: v, runner } = this.repo.resolve(name, version);
    const labels = { model: name, version: v };
    const started = performance.now();
    try {
      const built = await build(runner);
      const limit = runner.cfg.timeoutMs;
      const t = built.timeoutMs;
      const budget = t && t > 0 ? Math.min(t, limit) : limit;
      const job = built.job(Date.now() + budget);
      job.timeoutMs = budget;
      let done: InferDone;
      try {
        done = await runner.infer(job);
      } catch (err) {
        // Swapped out between lookup and enqueue (the body was being decoded): the job never left
        // this thread, so it runs on the version that replaced it when its inputs are the same.
        const again = isKapokError(err) && err.details?.retryable ? this.repo.resolve(name, version) : null;
        if (!again || again.runner === runner || !sameInputs(again.runner, runner)) throw err;
        ({ version: v, runner } = again);
        labels.version = v;
        done = await runner.infer(job);
      }
      this.metrics.success.inc(labels);
      this.metrics.requestSeconds.observe(labels, (performance.now() - started) / 1000);
      this.metrics.queueSeconds.observe(labels, done.queueMs / 1000);
      return { version: v, runner, done };
    } catch (err) {
      const e = isKapokError(err) ? err : new KapokError('KAPOK_INTERNAL', String(err), { cause: err });
      this.metrics.failure.inc({ ...labels, reason: REASONS[e.code] ?? 'internal' });
      if (e.status >= 500 && e.code !== 'KAPOK_INFERENCE_MODEL_NOT_READY')
        this.logger.warn(
          { code: e.code, model: name, version: v, reason: e.message },
          'inference request failed',
        );
      throw e;
    }
  }
}

function sameInputs(a: VersionRunner, b: VersionRunner): boolean {
  return (
    JSON.stringify(a.inputs) === JSON.stringify(b.inputs) &&
    JSON.stringify(a.outputs) === JSON.stringify(b.outputs)
  );
}
