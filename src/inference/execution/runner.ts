import { statSync } from 'node:fs';
import { KapokError } from '../../core/errors.js';
import { startWorker } from '../../core/worker.js';
import type { ResolvedModelConfig } from '../config.js';
import type { TensorMeta, WireTensor } from '../tensors/datatypes.js';
import { InlineSession } from './inline-session.js';
import type { FromWorker, RunPart, ToWorker, WorkerInit } from './session-core.js';

/**
 * One loaded model version: `instances` worker threads sharing one bounded queue. Requests past their
 * deadline are dropped from the queue before they run; with dynamic batching, waiting requests with
 * the same shape (but the first dimension) run together up to maxBatchSize. A worker that dies is
 * replaced; only the requests it was running fail. A tiny model (file of at most inlineMaxBytes, one
 * instance) runs its session on this thread instead (inline-session.ts), behind the same messages.
 */

export interface InferJob {
  inputs: WireTensor[];
  outputs: string[];
  /** First dimension of the inputs (rows), for batching. */
  rows: number;
  /** Inputs' shapes without the first dimension, joined: only equal keys batch together. */
  shapeKey: string;
  /** Absolute time (Date.now()) after which the request is answered 504. */
  deadline: number;
  /** The request's time budget (ms) that `deadline` was set from, named in the 504's message. */
  timeoutMs?: number;
}

export interface InferDone {
  outputs: WireTensor[];
  queueMs: number;
  computeMs: number;
  /** Requests in the execution this one ran in. */
  batch: number;
}

export interface RunnerHooks {
  onExecution?(requests: number, rows: number, computeMs: number): void;
  onQueueDepth?(depth: number): void;
  onWorkerCrash?(message: string): void;
  /** INLINE_SLOW_RUNS inline runs in a row took longer than INLINE_MAX_RUN_MS (the last: computeMs):
   * the version moved to a worker thread. */
  onInlineDemoted?(computeMs: number): void;
}

/**
 * An inline run longer than this blocked the event loop (and every other capability on it) for
 * that long. Size is only a proxy for cost (a small convolution over a large image is slow), so
 * INLINE_SLOW_RUNS such runs in a row move the version to a session worker for good. In a row, and
 * not counting a session's first run (ORT plans its memory then): a run of microseconds that a busy
 * machine preempted once is not a slow model.
 */
export const INLINE_MAX_RUN_MS = 2;
export const INLINE_SLOW_RUNS = 3;

interface Pending {
  job: InferJob;
  enqueued: number;
  state: 'queued' | 'running' | 'done';
  timer: NodeJS.Timeout | null;
  resolve(r: InferDone): void;
  reject(e: KapokError): void;
}

/** What a slot talks to: a session worker thread, or an inline session with the same interface. */
interface SessionHost {
  postMessage(msg: ToWorker, transfer?: ArrayBuffer[]): void;
  on(event: 'message', f: (msg: FromWorker) => void): unknown;
  on(event: 'error', f: (err: Error) => void): unknown;
  on(event: 'exit', f: (code: number) => void): unknown;
  terminate(): Promise<number>;
}

interface Slot {
  worker: SessionHost;
  ready: boolean;
  busy: Pending[] | null;
  seq: number;
  /** Inline only: runs answered, and how many of the last ones in a row were slow. */
  runs: number;
  slowInARow: number;
}

function spawnWorker(init: WorkerInit, memoryMb: number): SessionHost {
  return startWorker(import.meta.url, 'session-worker', {
    workerData: init,
    resourceLimits: { maxOldGenerationSizeMb: memoryMb },
  });
}

export class VersionRunner {
  inputs: TensorMeta[] = [];
  outputs: TensorMeta[] = [];
  /** True when every input and output has a dynamic first dimension and batching is configured. */
  batched = false;
  private readonly slots: Slot[] = [];
  private queue: Pending[] = [];
  private head = 0;
  private queued = 0;
  private closing = false;
  /** Past the drain: new requests are refused (a caller may retry on the version that replaced this). */
  private closed = false;
  private batchTimer: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;
  /** Sessions run on this thread (the file's size and cfg.inlineMaxBytes at start; a slow run
   * turns it off for good, see INLINE_MAX_RUN_MS). */
  inline: boolean;

  constructor(
    readonly file: string,
    readonly cfg: ResolvedModelConfig,
    private readonly hooks: RunnerHooks = {},
  ) {
    this.inline = isInline(file, cfg);
  }

  get queueDepth(): number {
    return this.queued;
  }

  /** Spawns the workers and waits until each has loaded the model; rejects with the load error. */
  async start(): Promise<void> {
    try {
      await Promise.all(Array.from({ length: this.cfg.instances }, () => this.addSlot()));
    } catch (err) {
      await this.terminate();
      throw err;
    }
    const first = this.outputs.concat(this.inputs);
    this.batched = this.cfg.batching !== null && first.every((t) => t.shape[0] === -1);
  }

  private addSlot(): Promise<void> {
    const init: WorkerInit = {
      file: this.file,
      intraOpThreads: this.cfg.intraOpThreads,
      intraOpSpinning: this.cfg.intraOpSpinning,
    };
    const slot: Slot = {
      // Inline: one intra-op thread, the event loop's own; a pool would spin beside it for a run of
      // microseconds (the main thread's profile had ORT's run as its top item with the pool of 2).
      worker: this.inline
        ? new InlineSession({ ...init, intraOpThreads: 1 })
        : spawnWorker(init, this.cfg.workerMemoryMb),
      ready: false,
      busy: null,
      seq: 0,
      runs: 0,
      slowInARow: 0,
    };
    this.slots.push(slot);
    return new Promise((resolve, reject) => {
      slot.worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          this.inputs = msg.inputs;
          this.outputs = msg.outputs;
          slot.ready = true;
          resolve();
          this.pump();
        } else if (msg.type === 'load-failed') {
          reject(new KapokError('KAPOK_INFERENCE_LOAD_FAILED', `cannot load ${this.file}: ${msg.message}`));
        } else this.finish(slot, msg);
      });
      const died = (message: string) => {
        if (!this.slots.includes(slot)) return;
        this.slots.splice(this.slots.indexOf(slot), 1);
        if (!slot.ready) {
          reject(new KapokError('KAPOK_INFERENCE_LOAD_FAILED', `cannot load ${this.file}: ${message}`));
          return;
        }
        const failed = slot.busy ?? [];
        slot.busy = null;
        for (const p of failed)
          this.settle(
            p,
            null,
            new KapokError('KAPOK_INFERENCE_WORKER_CRASHED', `inference worker died: ${message}`),
          );
        if (this.closing) return this.checkDrained();
        this.hooks.onWorkerCrash?.(message);
        // Replace it; if even that fails the remaining workers keep serving.
        this.addSlot().catch((err) =>
          this.hooks.onWorkerCrash?.(`replacement failed: ${(err as Error).message}`),
        );
      };
      slot.worker.on('error', (err) =>
        died(
          (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? `${err.message} (workerMemoryMb ${this.cfg.workerMemoryMb} exceeded: raise workerMemoryMb in the model's config.yaml or inference.defaults, or send smaller requests)`
            : err.message,
        ),
      );
      slot.worker.on('exit', (code) => died(`exited with code ${code}`));
    });
  }

  /** Takes an idle inline slot out of service and starts a worker in its place; queued requests wait
   * for the worker (their deadlines still apply). Called before pump(), so nothing more goes inline. */
  private demote(slot: Slot, computeMs: number): void {
    this.inline = false;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    slot.worker.terminate().catch(() => {});
    this.hooks.onInlineDemoted?.(computeMs);
    this.addSlot().catch((err) =>
      this.hooks.onWorkerCrash?.(`replacement failed: ${(err as Error).message}`),
    );
  }

  infer(job: InferJob): Promise<InferDone> {
    // While draining (closing) requests are still taken: they were routed here before a swap.
    if (this.closed)
      return Promise.reject(
        new KapokError('KAPOK_INFERENCE_MODEL_NOT_READY', 'model version is unloading', {
          details: { retryable: true },
        }),
      );
    if (this.queued >= this.cfg.maxQueue)
      return Promise.reject(
        new KapokError(
          'KAPOK_INFERENCE_QUEUE_FULL',
          `queue full (${this.cfg.maxQueue} waiting): retry later, or raise maxQueue / instances`,
        ),
      );
    return new Promise<InferDone>((resolve, reject) => {
      const p: Pending = { job, enqueued: performance.now(), state: 'queued', timer: null, resolve, reject };
      const wait = job.deadline - Date.now();
      p.timer = setTimeout(
        () => {
          if (p.state === 'queued') this.queued--;
          this.settle(
            p,
            null,
            new KapokError(
              'KAPOK_INFERENCE_TIMEOUT',
              // The budget, not the time left at enqueue: that was less by however long parsing took.
              `deadline exceeded after ${job.timeoutMs ?? Math.max(0, Math.round(wait))} ms`,
            ),
          );
          this.hooks.onQueueDepth?.(this.queued);
        },
        Math.max(0, wait),
      );
      this.queue.push(p);
      this.queued++;
      this.hooks.onQueueDepth?.(this.queued);
      this.pump();
    });
  }

  private settle(p: Pending, r: InferDone | null, err?: KapokError): void {
    if (p.state === 'done') return;
    p.state = 'done';
    if (p.timer) clearTimeout(p.timer);
    if (r) p.resolve(r);
    else p.reject(err as KapokError);
  }

  private nextQueued(): Pending | null {
    while (this.head < this.queue.length) {
      const p = this.queue[this.head] as Pending;
      if (p.state === 'queued') return p;
      this.head++;
    }
    return null;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Hands queued work to idle workers. */
  private pump(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.busy) continue;
      const first = this.nextQueued();
      if (!first) break;
      const batch = this.batched ? this.takeBatch(first) : this.take([first]);
      if (!batch) return; // waiting for more requests (batch timer set)
      this.dispatch(slot, batch);
    }
    this.compact();
  }

  private take(batch: Pending[]): Pending[] {
    for (const p of batch) {
      p.state = 'running';
      this.queued--;
    }
    this.hooks.onQueueDepth?.(this.queued);
    return batch;
  }

  /**
   * Requests with the first one's shape key, up to maxBatchSize rows. null: the batch is not full,
   * not a preferred size and the oldest request has not waited maxQueueDelayUs yet (a timer is set);
   * `now` skips that wait (the timer fired).
   */
  private takeBatch(first: Pending, now = false): Pending[] | null {
    const cfg = this.cfg;
    const max = cfg.maxBatchSize;
    const picked: Pending[] = [first];
    let rows = first.job.rows;
    for (let i = this.head + 1; i < this.queue.length && rows < max; i++) {
      const p = this.queue[i] as Pending;
      if (p.state !== 'queued' || p.job.shapeKey !== first.job.shapeKey || rows + p.job.rows > max) continue;
      picked.push(p);
      rows += p.job.rows;
    }
    const delayMs = (cfg.batching?.maxQueueDelayUs ?? 0) / 1000;
    const waited = performance.now() - first.enqueued;
    const preferred = cfg.batching?.preferredBatchSizes.includes(rows) ?? false;
    if (!now && rows < max && !preferred && waited < delayMs) {
      this.batchTimer ??= setTimeout(
        () => {
          this.batchTimer = null;
          this.flushBatch();
        },
        Math.max(1, Math.ceil(delayMs - waited)),
      );
      return null;
    }
    return this.take(picked);
  }

  /** The oldest request waited its delay: dispatch what is queued now. */
  private flushBatch(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.busy) continue;
      const first = this.nextQueued();
      if (!first) return;
      this.dispatch(slot, this.takeBatch(first, true) as Pending[]);
    }
  }

  private dispatch(slot: Slot, batch: Pending[]): void {
    slot.busy = batch;
    slot.seq++;
    // A batch goes as one part, its inputs concatenated here: one transferred buffer per input
    // instead of one per request. Transferring a buffer costs far more than copying a small one
    // (the profile at concurrency 64 had postMessage above JSON parsing); the answer is split back
    // in finish(). The worker still concatenates parts itself when sent several.
    const parts: RunPart[] =
      batch.length === 1
        ? [{ inputs: (batch[0] as Pending).job.inputs, outputs: (batch[0] as Pending).job.outputs }]
        : [packBatch(batch.map((p) => p.job))];
    // An inline session takes the buffers as they are: nothing to transfer.
    const transfer: ArrayBuffer[] = [];
    if (!this.inline)
      for (const part of parts)
        for (const t of part.inputs)
          if (t.data instanceof ArrayBuffer && t.data.byteLength > 0) transfer.push(t.data);
    const now = performance.now();
    for (const p of batch) p.enqueued = now - p.enqueued; // becomes the queue time
    slot.worker.postMessage({ type: 'run', seq: slot.seq, parts } satisfies ToWorker, transfer);
  }

  private finish(slot: Slot, msg: FromWorker): void {
    const batch = slot.busy;
    if (!batch || (msg.type !== 'result' && msg.type !== 'failed') || msg.seq !== slot.seq) return;
    slot.busy = null;
    // Not while draining: the inline slot finishes what it has (a worker started now would serve nothing).
    if (this.inline && !this.closing && msg.type === 'result' && slot.runs++ > 0) {
      slot.slowInARow = msg.computeMs > INLINE_MAX_RUN_MS ? slot.slowInARow + 1 : 0;
      if (slot.slowInARow >= INLINE_SLOW_RUNS) this.demote(slot, msg.computeMs);
    }
    if (msg.type === 'failed') {
      for (const p of batch)
        this.settle(
          p,
          null,
          new KapokError('KAPOK_INFERENCE_RUN_FAILED', `ONNX Runtime failed: ${msg.message}`),
        );
      if (this.closing) this.checkDrained();
      this.pump();
      return;
    }
    const rows = batch.reduce((n, p) => n + p.job.rows, 0);
    this.hooks.onExecution?.(batch.length, rows, msg.computeMs);
    // Answered: no deadline can fail these any more while the next batch is dispatched first.
    for (const p of batch)
      if (p.timer) {
        clearTimeout(p.timer);
        p.timer = null;
      }
    if (this.closing) this.checkDrained();
    // The next batch goes to the worker before this one is answered, so it runs while we write.
    this.pump();
    if (batch.length === 1) {
      const p = batch[0] as Pending;
      this.settle(p, {
        outputs: msg.parts[0] as WireTensor[],
        queueMs: p.enqueued,
        computeMs: msg.computeMs,
        batch: 1,
      });
      return;
    }
    const all = this.outputs.map((o) => o.name);
    const byName = new Map((msg.parts[0] ?? []).map((t) => [t.name, t]));
    let row = 0;
    for (const p of batch) {
      const outputs = (p.job.outputs.length ? p.job.outputs : all).map((name) =>
        sliceRows(byName.get(name) as WireTensor, row, row + p.job.rows, rows),
      );
      row += p.job.rows;
      this.settle(p, { outputs, queueMs: p.enqueued, computeMs: msg.computeMs, batch: batch.length });
    }
  }

  /** Test hooks: block worker `i` for `ms` (a slow model), or make it die. */
  stallWorker(i: number, ms: number): void {
    this.slots[i]?.worker.postMessage({ type: 'stall', ms } satisfies ToWorker);
  }
  crashWorker(i: number): void {
    this.slots[i]?.worker.postMessage({ type: 'crash' } satisfies ToWorker);
  }
  get workers(): number {
    return this.slots.filter((s) => s.ready).length;
  }

  private checkDrained(): void {
    if (this.queued === 0 && this.slots.every((s) => !s.busy)) this.drained?.();
  }

  /** Stops taking requests, lets queued and running ones finish (up to `graceMs`), then ends the workers. */
  async close(graceMs = 30_000): Promise<void> {
    this.closing = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
      this.pump();
      this.checkDrained();
    });
    this.closed = true;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    for (let p = this.nextQueued(); p; p = this.nextQueued()) {
      this.queued--;
      this.settle(p, null, new KapokError('KAPOK_INFERENCE_MODEL_NOT_READY', 'model version unloaded'));
    }
    await this.terminate();
  }

  private async terminate(): Promise<void> {
    this.closing = true;
    this.closed = true;
    const slots = this.slots.splice(0);
    for (const s of slots)
      for (const p of s.busy ?? [])
        this.settle(p, null, new KapokError('KAPOK_INFERENCE_MODEL_NOT_READY', 'model version unloaded'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

/**
 * Inline when cfg.inlineMaxBytes allows the file's size and one instance is asked for (several
 * instances are for running in parallel, which one thread cannot do).
 */
function isInline(file: string, cfg: ResolvedModelConfig): boolean {
  if (!(cfg.inlineMaxBytes > 0) || cfg.instances !== 1) return false;
  try {
    return statSync(file).size <= cfg.inlineMaxBytes;
  } catch {
    return false; // a worker reports the load error as before
  }
}

/** The jobs of a batch as one part: each input concatenated along the first dimension. */
function packBatch(jobs: InferJob[]): RunPart {
  const first = jobs[0] as InferJob;
  const rows = jobs.reduce((n, j) => n + j.rows, 0);
  const inputs = first.inputs.map((t0, k): WireTensor => {
    const shape = t0.shape.slice();
    shape[0] = rows;
    if (!(t0.data instanceof ArrayBuffer))
      return { ...t0, shape, data: jobs.flatMap((j) => (j.inputs[k] as WireTensor).data as string[]) };
    let total = 0;
    for (const j of jobs) total += ((j.inputs[k] as WireTensor).data as ArrayBuffer).byteLength;
    const out = new Uint8Array(total);
    let o = 0;
    for (const j of jobs) {
      const b = (j.inputs[k] as WireTensor).data as ArrayBuffer;
      out.set(new Uint8Array(b), o);
      o += b.byteLength;
    }
    return { ...t0, shape, data: out.buffer };
  });
  // Every output any request asked for; [] (all) when one of them asked for all.
  const outputs = jobs.some((j) => j.outputs.length === 0)
    ? []
    : [...new Set(jobs.flatMap((j) => j.outputs))];
  return { inputs, outputs };
}

/** Rows [from, to) of a batch's output of `total` rows, as a request's own tensor. */
function sliceRows(t: WireTensor, from: number, to: number, total: number): WireTensor {
  const shape = t.shape.slice();
  shape[0] = to - from;
  if (!(t.data instanceof ArrayBuffer)) {
    const per = total === 0 ? 0 : t.data.length / total;
    return { ...t, shape, data: t.data.slice(from * per, to * per) };
  }
  const per = total === 0 ? 0 : t.data.byteLength / total;
  return { ...t, shape, data: t.data.slice(from * per, to * per) };
}
