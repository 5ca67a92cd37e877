import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/**
 * Checkpoints a SQLite store's WAL from a thread of its own (see store.ts, "Checkpoints"). It opens
 * a second connection to the same file and, every intervalMs, runs a PASSIVE checkpoint: it copies
 * committed pages into the database file and fsyncs it without taking the write lock, so the main
 * thread's writes go on meanwhile. The next write starts the WAL over only if it finds it wholly
 * copied, which a load that never pauses may never allow: past restartPages frames one RESTART
 * checkpoint finishes the copy (it holds off writers for that last part) so the WAL stays bounded.
 */
export interface CheckpointWorkerData {
  file: string;
  intervalMs: number;
  busyTimeoutMs: number;
  restartPages: number;
}

export type CheckpointMessage =
  | { type: 'ready' }
  | { type: 'checkpoint'; mode: 'PASSIVE' | 'RESTART'; busy: boolean; log: number; checkpointed: number };

if (!parentPort) throw new Error('sqlite-checkpoint-worker must run as a worker thread');
const port = parentPort;
const data = workerData as CheckpointWorkerData;
const db = new Database(data.file, { timeout: data.busyTimeoutMs });

interface Result {
  busy: number;
  log: number;
  checkpointed: number;
}

function checkpoint(mode: 'PASSIVE' | 'RESTART'): Result {
  const [r] = db.pragma(`wal_checkpoint(${mode})`) as Result[];
  return r as Result;
}

/** Passes per tick: each copies what the writer appended during the one before, so they shrink. */
const MAX_PASSES = 8;

const timer = setInterval(() => {
  try {
    let mode: 'PASSIVE' | 'RESTART' = 'PASSIVE';
    let r = checkpoint(mode);
    // A pass ends behind the writer when it wrote meanwhile; the WAL only starts over at a write that
    // finds it wholly copied, so pass again until one finds nothing new (those are instant).
    for (let pass = 1, last = r; pass < MAX_PASSES && last.checkpointed > 0; pass++) {
      const next = checkpoint(mode);
      if (next.log === last.log && next.checkpointed === last.checkpointed) break;
      r = last = next;
    }
    if (r.log > data.restartPages) {
      mode = 'RESTART';
      r = checkpoint(mode);
    }
    if (r.log > 0)
      port.postMessage({
        type: 'checkpoint',
        mode,
        busy: r.busy === 1,
        log: r.log,
        checkpointed: r.checkpointed,
      });
  } catch {
    // SQLITE_BUSY past the busy timeout (a long transaction elsewhere): the next tick tries again.
  }
}, data.intervalMs);

port.on('message', (msg: unknown) => {
  if (msg !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
port.postMessage({ type: 'ready' } satisfies CheckpointMessage);
