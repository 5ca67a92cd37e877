import type { Checkpoint, CheckpointInput } from '../queries.js';
import type { TaskSpec } from '../spec.js';
import type { AttemptResult } from '../transitions.js';

/** What an executor is given for one attempt (docs/jobs.md#executors). */
export interface RunContext {
  jobId: string;
  task: string;
  attempt: number;
  /** GPU indexes given to this attempt (CUDA_VISIBLE_DEVICES for processes). */
  gpus: readonly number[];
  spec: TaskSpec;
  /** Per task, kept across attempts on this machine. */
  checkpointDir: string;
  /** The newest checkpoint the task reported in an earlier attempt, or null. */
  checkpoint: Checkpoint | null;
  /** Aborted on cancel, on a lost lease and at shutdown: the executor stops the work and resolves. */
  signal: AbortSignal;
  /** The attempt's time limit (timeoutS), or null. */
  timeoutMs: number | null;
  /** Most bytes of output kept (the tail). */
  maxOutputBytes: number;
  /** Stores a checkpoint the task reported; rejects with KAPOK_JOBS_CHECKPOINT_INVALID. */
  onCheckpoint(c: CheckpointInput): Promise<void>;
  /** The attempt's process (group) id, recorded so a restarted Kapok can stop an orphan. */
  onPid?(pid: number): void;
}

export type Executor = (ctx: RunContext) => Promise<AttemptResult>;

/** Keeps the last `max` bytes written (output is size-limited; the end is what explains a failure). */
export class Tail {
  #chunks: Buffer[] = [];
  #size = 0;
  dropped = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.#chunks.push(b);
    this.#size += b.length;
    while (this.#size > this.max && this.#chunks.length) {
      const first = this.#chunks[0] as Buffer;
      const over = this.#size - this.max;
      if (first.length <= over) {
        this.#chunks.shift();
        this.#size -= first.length;
        this.dropped += first.length;
      } else {
        this.#chunks[0] = first.subarray(over);
        this.#size -= over;
        this.dropped += over;
      }
    }
  }
  text(): string {
    const body = Buffer.concat(this.#chunks).toString('utf8');
    return this.dropped ? `[${this.dropped} earlier bytes dropped]\n${body}` : body;
  }
}
