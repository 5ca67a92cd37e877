import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { request } from 'undici';
import { type RunningApp, startApp } from '../../src/app.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';

/** An explicit grant of every topic to anonymous clients (tests of other things than authorization). */
export const ANONYMOUS_ALL = { who: 'anonymous', publish: ['#'], subscribe: ['#'] };

export interface Edge {
  app: RunningApp;
  dataDir: string;
  base: string;
  mqttPort: number;
  logs: ReturnType<typeof captureLogs>;
  stop(opts?: { keepData?: boolean }): Promise<void>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answers
  get(path: string): Promise<{ status: number; body: any }>;
  client(opts?: mqtt.IClientOptions & { ws?: boolean }): Promise<MqttClient>;
}

/** Starts Kapok with edge on ephemeral ports (HTTP and MQTT); `edge` is merged over test defaults. */
export async function startEdge(
  edge: Record<string, unknown> = {},
  dataDir?: string,
  top: Record<string, unknown> = {},
): Promise<Edge> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'kapok-edge-'));
  const config = testConfig({
    ...top,
    dataDir: dir,
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'info', requests: false },
    edge: {
      enabled: true,
      auth: { anonymous: true },
      // Since issue 13 nothing is allowed by default: these tests' anonymous clients get everything.
      acl: { grants: [ANONYMOUS_ALL] },
      batch: { size: 200, intervalMs: 10 },
      ...edge,
      mqtt: { port: 0, host: '127.0.0.1', ...((edge.mqtt as object) ?? {}) },
    },
  });
  const logs = captureLogs();
  const app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
  const line = logs.lines.find((l) => l.msg === 'edge mqtt broker listening');
  const mqttPort = Number(line?.port ?? 0);
  const base = `http://127.0.0.1:${app.port}`;
  return {
    app,
    dataDir: dir,
    base,
    mqttPort,
    logs,
    async stop(opts = {}) {
      await app.stop('test');
      if (!opts.keepData) rmSync(dir, { recursive: true, force: true });
    },
    async get(path) {
      const res = await request(`${base}${path}`);
      return { status: res.statusCode, body: await res.body.json() };
    },
    async client(opts = {}) {
      const { ws, ...rest } = opts;
      const url = ws ? `ws://127.0.0.1:${app.port}/mqtt` : `mqtt://127.0.0.1:${mqttPort}`;
      const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...rest });
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
      });
      return c;
    },
  };
}

/** Polls `fn` until it returns a truthy value (or throws after timeoutMs, with the last value). */
export async function until<T>(
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | null | undefined | false;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end)
      throw new Error(`${what} not met within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
