import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import {
  type FromWorker,
  type OpenSession,
  openSession,
  type ToWorker,
  type WorkerInit,
} from './session-core.js';

/**
 * One ONNX Runtime session on its own thread: `session.run()` blocks the thread it runs on, so the
 * HTTP/gRPC event loop never calls it. Tensors arrive and leave as transferred ArrayBuffers. A batch
 * of requests is concatenated along the first dimension, run once and split back per request
 * (session-core.ts).
 */

export type { FromWorker, RunPart, ToWorker, WorkerInit } from './session-core.js';

async function main(): Promise<void> {
  if (!parentPort) throw new Error('session-worker must run as a worker thread');
  const port = parentPort;
  let session: OpenSession;
  try {
    session = await openSession(ort, workerData as WorkerInit);
    port.postMessage({
      type: 'ready',
      inputs: session.inputs,
      outputs: session.outputs,
    } satisfies FromWorker);
  } catch (err) {
    port.postMessage({ type: 'load-failed', message: (err as Error).message } satisfies FromWorker);
    return;
  }

  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'stall') {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, msg.ms);
      return;
    }
    // Thrown in the handler: the worker dies before it reads any later message.
    if (msg.type === 'crash') throw new Error('inference worker crash requested (test hook)');
    void session.run(msg).then(({ reply, transfer }) => port.postMessage(reply, transfer));
  });
}

await main();
