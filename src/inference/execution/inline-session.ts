import { EventEmitter } from 'node:events';
import type ort from 'onnxruntime-node';
import {
  type FromWorker,
  type OpenSession,
  openSession,
  type ToWorker,
  type WorkerInit,
} from './session-core.js';

/**
 * A tiny model's session on the event-loop thread, behind the same message interface as a session
 * worker (runner.ts treats both alike). For a model of a few KiB the run takes microseconds, while
 * the hand-off to a worker and back (two postMessage calls, two thread wake-ups) took most of the
 * time Kapok added to a request. Messages are handled one at a time in order, as a worker's are; the
 * test hooks keep their meaning: `stall` delays later messages, `crash` ends this session as if its
 * thread had died.
 */

let ortModule: Promise<typeof ort> | null = null;
/** Loaded on first use: a Kapok without inline models never loads ONNX Runtime on this thread. */
const loadOrt = () => {
  ortModule ??= import('onnxruntime-node').then((m) => (m.default ?? m) as typeof ort);
  return ortModule;
};

export class InlineSession extends EventEmitter {
  private session: OpenSession | null = null;
  private chain: Promise<void>;
  private dead = false;

  constructor(init: WorkerInit) {
    super();
    this.chain = loadOrt()
      .then((o) => openSession(o, init))
      .then(
        (s) => {
          if (this.dead) {
            s.release().catch(() => {});
            return;
          }
          this.session = s;
          this.emit('message', { type: 'ready', inputs: s.inputs, outputs: s.outputs } satisfies FromWorker);
        },
        (err: Error) => {
          this.emit('message', { type: 'load-failed', message: err.message } satisfies FromWorker);
        },
      );
  }

  postMessage(msg: ToWorker): void {
    this.chain = this.chain.then(() => this.handle(msg));
  }

  private async handle(msg: ToWorker): Promise<void> {
    if (this.dead || !this.session) return;
    if (msg.type === 'stall') return new Promise((resolve) => setTimeout(resolve, msg.ms));
    if (msg.type === 'crash') {
      this.end();
      this.emit('error', new Error('inference worker crash requested (test hook)'));
      this.emit('exit', 1);
      return;
    }
    const { reply } = await this.session.run(msg);
    // Ended (unloaded) while running: nobody waits for the answer.
    if (!this.dead) this.emit('message', reply);
  }

  private end(): void {
    this.dead = true;
    const s = this.session;
    this.session = null;
    s?.release().catch(() => {});
  }

  /** As Worker.terminate(): ends the session once the message being handled is done. */
  async terminate(): Promise<number> {
    const done = this.chain;
    this.dead = true;
    await done.catch(() => {});
    this.end();
    this.emit('exit', 1);
    return 1;
  }

  // Worker's ref/unref: nothing to hold open here.
  ref(): void {}
  unref(): void {}
}
