import { parentPort, workerData } from 'node:worker_threads';
import mqtt from 'mqtt';

/**
 * The simulator's OBU on its own thread (started by simulate.ts), so a strategy is timed when it
 * arrives, not when the publishing loop lets go of the event loop. Times are absolute
 * (timeOrigin + now), comparable across threads.
 */

export interface ObuInit {
  url: string;
  id: string;
  topic: string;
  username?: string | undefined;
  password: string;
}

/** 'stop' ends the connection; the worker answers `{ stopped: true }`. */
export type ToObu = 'stop';

export type FromObu =
  | { ready: boolean; error: string | null }
  | { at: number; payload: string }
  | { stopped: true };

if (!parentPort) throw new Error('obu-worker must run as a worker thread');
const port = parentPort;
const post = (m: FromObu) => port.postMessage(m);
const w = workerData as ObuInit;

const c = mqtt.connect(w.url, {
  clientId: w.id,
  reconnectPeriod: 0,
  connectTimeout: 10000,
  ...(w.username ? { username: w.username, password: w.password } : {}),
});
c.on('connect', () => {
  (c.stream as { setNoDelay?: (v: boolean) => void } | undefined)?.setNoDelay?.(true);
  c.subscribe(w.topic, { qos: 1 }, (err) => post({ ready: !err, error: err ? err.message : null }));
});
c.on('error', (e) => post({ ready: false, error: e.message }));
c.on('message', (_t, p) => post({ at: performance.timeOrigin + performance.now(), payload: p.toString() }));
port.on('message', (m: ToObu) => {
  if (m === 'stop') c.end(false, () => post({ stopped: true }));
});
