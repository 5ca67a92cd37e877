import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { KapokError } from '../../core/errors.js';
import { startWorker } from '../../core/worker.js';
import type { VerifyJob, VerifyRequest, VerifyResponse } from './pool-worker.js';

export type { VerifyJob } from './pool-worker.js';

/**
 * SM9 verification on worker threads, so bursts of pairings (devices reconnecting at once) do not
 * stall the event loop. Jobs go to the worker with the fewest in flight; results equal sm9Verify's.
 */

export interface Sm9VerifyPoolOptions {
  /** Worker threads (default: one per core; the main thread mostly waits on them). */
  size?: number;
  /** Jobs waiting or running at most (default 10000); more are refused with KAPOK_GM_POOL_BUSY. */
  maxPending?: number;
}

export interface Sm9VerifyPool {
  verify(job: VerifyJob): Promise<boolean>;
  /** One message per worker share: cheaper than many verify() calls for a batch. */
  verifyMany(jobs: VerifyJob[]): Promise<boolean[]>;
  readonly size: number;
  /** Jobs sent and not yet answered. */
  readonly pending: number;
  close(): Promise<void>;
}

interface Slot {
  /** Started on the slot's first job: a start (or a pool nobody uses) does not pay for the threads. */
  worker: Worker | null;
  inFlight: number;
  waiting: Map<number, { resolve: (r: boolean[]) => void; reject: (e: Error) => void; jobs: number }>;
}

const spawnWorker = (): Worker => startWorker(import.meta.url, 'pool-worker');

export function createSm9VerifyPool(opts: Sm9VerifyPoolOptions = {}): Sm9VerifyPool {
  const size = opts.size ?? availableParallelism();
  if (!Number.isInteger(size) || size < 1 || size > 256)
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `SM9 verify pool size: expected 1..256 workers, found ${size}`,
    );
  const maxPending = opts.maxPending ?? 10_000;
  if (!Number.isInteger(maxPending) || maxPending < 1)
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `SM9 verify pool maxPending: expected >= 1, found ${maxPending}`,
    );

  let seq = 0;
  let pending = 0;
  let closed = false;
  const slots: Slot[] = [];

  /** Listens to the slot's worker; one that dies is replaced so later jobs do not wait forever. */
  function wire(slot: Slot, worker: Worker): void {
    worker.on('message', (res: VerifyResponse) => {
      const w = slot.waiting.get(res.seq);
      if (!w) return;
      slot.waiting.delete(res.seq);
      slot.inFlight -= w.jobs;
      pending -= w.jobs;
      if ('error' in res)
        w.reject(new KapokError('KAPOK_INTERNAL', `SM9 verify worker failed: ${res.error}`));
      else w.resolve(res.results);
      if (slot.waiting.size === 0) worker.unref();
    });
    worker.on('error', (err) => failAll(slot, err));
    worker.on('exit', () => {
      failAll(slot, new Error('worker exited'));
      if (closed || slot.worker !== worker) return;
      slot.worker = spawnWorker();
      wire(slot, slot.worker);
    });
    worker.unref();
  }

  for (let i = 0; i < size; i++) {
    slots.push({ worker: null, inFlight: 0, waiting: new Map() });
  }

  function failAll(slot: Slot, err: Error): void {
    for (const w of slot.waiting.values()) {
      pending -= w.jobs;
      w.reject(
        closed
          ? new KapokError('KAPOK_GM_POOL_CLOSED', 'SM9 verify pool closed before the job finished')
          : new KapokError('KAPOK_INTERNAL', `SM9 verify worker failed: ${err.message}`, { cause: err }),
      );
    }
    slot.waiting.clear();
    slot.inFlight = 0;
  }

  function send(slot: Slot, jobs: VerifyJob[]): Promise<boolean[]> {
    const s = ++seq;
    slot.inFlight += jobs.length;
    pending += jobs.length;
    return new Promise<boolean[]>((resolve, reject) => {
      slot.waiting.set(s, { resolve, reject, jobs: jobs.length });
      let worker = slot.worker;
      if (!worker) {
        worker = slot.worker = spawnWorker();
        wire(slot, worker);
      }
      // Referenced only while it has work: an idle pool never keeps the process alive.
      worker.ref();
      worker.postMessage({ seq: s, jobs } satisfies VerifyRequest);
    });
  }

  function admit(n: number): void {
    if (closed) throw new KapokError('KAPOK_GM_POOL_CLOSED', 'SM9 verify pool is closed');
    if (pending + n > maxPending)
      throw new KapokError(
        'KAPOK_GM_POOL_BUSY',
        `SM9 verify pool has ${pending} jobs pending (max ${maxPending}); retry shortly`,
      );
  }

  const leastBusy = (): Slot => slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));

  return {
    size,
    get pending() {
      return pending;
    },
    async verify(job) {
      admit(1);
      const [r] = await send(leastBusy(), [job]);
      return r === true;
    },
    async verifyMany(jobs) {
      admit(jobs.length);
      if (jobs.length === 0) return [];
      const per = Math.ceil(jobs.length / size);
      const parts: Promise<boolean[]>[] = [];
      for (let i = 0; i < jobs.length; i += per) parts.push(send(leastBusy(), jobs.slice(i, i + per)));
      return (await Promise.all(parts)).flat();
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(slots.map((s) => s.worker?.terminate()));
    },
  };
}
