import { sep } from 'node:path';
import { isKapokError, KapokError, messageOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ResolvedModelConfig } from '../config.js';
import { type RunnerHooks, VersionRunner } from '../execution/runner.js';
import type { InferenceMetrics } from '../metrics.js';
import { DATATYPES, type WireTensor } from '../tensors/datatypes.js';
import { verifyChecksum } from './checksum.js';
import type { ModelState, VersionState } from './state.js';

/**
 * Loading one version, a hot update included: verify the file, start its workers, warm them up,
 * then switch it in with one assignment, so requests never see a half-loaded version. A failure
 * leaves what was serving in place and is recorded on the version (metadata, ready state, logs).
 */

export interface LoadContext {
  logger: Logger;
  metrics: InferenceMetrics;
  /** The repository's folder: cut from reasons clients see (logs keep it). */
  root: string;
  /** The repository is closing: a version that finishes loading is not switched in. */
  isClosed(): boolean;
}

/** `sig` identifies the attempt (file size, mtime, settings) so an unchanged failure is not retried. */
export async function loadVersion(
  ctx: LoadContext,
  m: ModelState,
  version: string,
  file: string,
  sig: string,
  cfg: ResolvedModelConfig,
): Promise<void> {
  const state = versionState(m, version);
  state.sig = sig;
  const started = performance.now();
  let runner: VersionRunner;
  try {
    runner = await startVerified(ctx, m, version, file, cfg);
  } catch (err) {
    recordFailure(ctx, m, state, err);
    return;
  }
  // Unloaded (or the repository closed) while it loaded: nothing to switch in.
  if (ctx.isClosed() || !m.versions.has(version)) {
    await runner.close(0);
    return;
  }
  switchIn(ctx, m, state, runner, cfg, started);
}

function versionState(m: ModelState, version: string): VersionState {
  let s = m.versions.get(version);
  if (!s) {
    s = { version, state: 'LOADING', reason: null, runner: null, sig: null };
    m.versions.set(version, s);
  }
  return s;
}

/** A runner for the file, checksum verified, workers started and warmed up; ended again on failure. */
async function startVerified(
  ctx: LoadContext,
  m: ModelState,
  version: string,
  file: string,
  cfg: ResolvedModelConfig,
): Promise<VersionRunner> {
  await verifyChecksum(file, m.config.sha256[version]);
  const runner = new VersionRunner(file, cfg, runnerHooks(ctx, m.name, version));
  try {
    await runner.start();
    await warmUp(runner);
  } catch (err) {
    await runner.close(0);
    throw err;
  }
  return runner;
}

function runnerHooks(ctx: LoadContext, model: string, version: string): RunnerHooks {
  return {
    onExecution: (requests, rows, computeMs) => {
      const labels = { model, version };
      ctx.metrics.executions.inc(labels);
      ctx.metrics.inferences.inc(labels, requests > 1 ? rows : requests);
      ctx.metrics.computeSeconds.observe(labels, computeMs / 1000);
    },
    onQueueDepth: (depth) => ctx.metrics.queueDepth.set({ model, version }, depth),
    onInlineDemoted: (computeMs) =>
      ctx.logger.warn(
        { code: 'KAPOK_INFERENCE_INLINE_SLOW', model, version, computeMs: Math.round(computeMs * 100) / 100 },
        'an inline run blocked the event loop too long; the model now runs on a worker thread (set inlineMaxBytes: 0 for it to start there)',
      ),
    onWorkerCrash: (message) => {
      ctx.metrics.workerRestarts.inc({ model, version });
      ctx.logger.error(
        { code: 'KAPOK_INFERENCE_WORKER_CRASHED', model, version, reason: message },
        'inference worker died; replacing it',
      );
    },
  };
}

/** One inference on zeros (dynamic dimensions 1) so the first real request does not pay for set-up. */
async function warmUp(runner: VersionRunner): Promise<void> {
  const inputs: WireTensor[] = runner.inputs.map((m) => {
    const shape = m.shape.map((d) => (d === -1 ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const info = DATATYPES[m.datatype];
    return {
      name: m.name,
      datatype: m.datatype,
      shape,
      data: info.ctor ? new ArrayBuffer(n * info.size) : new Array(n).fill(''),
    };
  });
  try {
    await runner.infer({
      inputs,
      outputs: [],
      rows: 1,
      shapeKey: 'warmup',
      deadline: Date.now() + runner.cfg.timeoutMs,
    });
  } catch (err) {
    throw new KapokError('KAPOK_INFERENCE_LOAD_FAILED', `warm-up inference failed: ${messageOf(err)}`);
  }
}

/** A READY version keeps serving its previous file; any other becomes UNAVAILABLE with the reason. */
function recordFailure(ctx: LoadContext, m: ModelState, state: VersionState, err: unknown): void {
  const e = isKapokError(err) ? err : new KapokError('KAPOK_INFERENCE_LOAD_FAILED', messageOf(err));
  state.reason = `${withoutRoot(e.message, ctx.root)} [${e.code}]`;
  if (state.state !== 'READY') state.state = 'UNAVAILABLE';
  ctx.metrics.loadFailures.inc({
    model: m.name,
    reason: e.code === 'KAPOK_INFERENCE_CHECKSUM' ? 'checksum' : 'load',
  });
  ctx.logger.error(
    {
      code: e.code,
      model: m.name,
      version: state.version,
      reason: e.message,
      serving: state.state === 'READY' ? state.version : null,
    },
    state.state === 'READY'
      ? 'inference model reload failed; the previous file keeps serving'
      : 'inference model version failed to load',
  );
}

/** The switch: from here new requests go to the new runner; the old one drains what it holds. */
function switchIn(
  ctx: LoadContext,
  m: ModelState,
  state: VersionState,
  runner: VersionRunner,
  cfg: ResolvedModelConfig,
  started: number,
): void {
  const old = state.runner;
  state.runner = runner;
  state.state = 'READY';
  state.reason = null;
  ctx.logger.info(
    {
      model: m.name,
      version: state.version,
      ms: Math.round(performance.now() - started),
      instances: cfg.instances,
      batching: runner.batched,
    },
    old ? 'inference model version reloaded' : 'inference model version loaded',
  );
  if (old) void old.close();
}

/** `<root>/mlp/4/model.onnx` as `mlp/4/model.onnx`: clients see the model's own paths only. */
export function withoutRoot(text: string, root: string): string {
  if (!root) return text;
  const dir = root.endsWith(sep) ? root : root + sep;
  return text.split(dir).join('').split(root).join('<model repository>');
}
