/// <reference lib="webworker" />
/**
 * Takes a telemetry flood off the page's main thread: this worker holds the /ws/telemetry socket,
 * parses every frame and keeps only the latest value per series (device, measurement, field) and
 * the chosen series' points; ten times a second it posts what changed. The page then does one
 * small update per post, whatever the message rate.
 */

interface Point {
  measurement: string;
  device: string;
  fields: Record<string, unknown>;
  ts: number;
}
export interface TelemetryPost {
  /** [device, measurement, field, value, ts] changed since the last post. */
  latest: Array<[string, string, string, unknown, number]>;
  /** New points of the chosen series: [seconds, value]. */
  trace: Array<[number, number]>;
  rate: number;
  dropped: number;
  up: boolean;
}
export type TelemetryCommand =
  | { type: 'open'; url: string }
  | { type: 'choose'; device: string; measurement: string; field: string }
  | { type: 'close' };

const scope = self as unknown as DedicatedWorkerGlobalScope;
const changed = new Map<string, [string, string, string, unknown, number]>();
let trace: Array<[number, number]> = [];
let chosen: { device: string; measurement: string; field: string } | null = null;
let ws: WebSocket | null = null;
let up = false;
let closed = false;
let count = 0;
let dropped = 0;
let windowStart = performance.now();
let rate = 0;
let delay = 500;

function open(url: string) {
  ws = new WebSocket(url);
  ws.onopen = () => {
    up = true;
    delay = 500;
  };
  ws.onclose = () => {
    up = false;
    if (closed) return;
    setTimeout(() => open(url), delay);
    delay = Math.min(delay * 2, 10_000);
  };
  ws.onmessage = (ev) => {
    let msg: { type?: string; points?: Point[]; frames?: number };
    try {
      msg = JSON.parse(String(ev.data));
    } catch {
      return;
    }
    if (msg.type === 'dropped') dropped += msg.frames ?? 0;
    if (msg.type !== 'points' || !Array.isArray(msg.points)) return;
    count++;
    for (const p of msg.points) {
      for (const f in p.fields) {
        const v = p.fields[f];
        changed.set(`${p.device}\u0000${p.measurement}\u0000${f}`, [p.device, p.measurement, f, v, p.ts]);
        if (
          chosen &&
          typeof v === 'number' &&
          chosen.device === p.device &&
          chosen.measurement === p.measurement &&
          chosen.field === f
        )
          trace.push([p.ts / 1000, v]);
      }
    }
    if (trace.length > 2000) trace = trace.slice(-2000);
  };
}

setInterval(() => {
  const now = performance.now();
  if (now - windowStart >= 1000) {
    rate = (count * 1000) / (now - windowStart);
    count = 0;
    windowStart = now;
  }
  if (changed.size === 0 && trace.length === 0) return;
  const post: TelemetryPost = { latest: [...changed.values()], trace, rate, dropped, up };
  changed.clear();
  trace = [];
  scope.postMessage(post);
}, 100);

scope.onmessage = (ev: MessageEvent<TelemetryCommand>) => {
  const c = ev.data;
  if (c.type === 'open' && !ws) open(c.url);
  if (c.type === 'choose') {
    chosen = { device: c.device, measurement: c.measurement, field: c.field };
    trace = [];
  }
  if (c.type === 'close') {
    closed = true;
    ws?.close();
    scope.close();
  }
};
