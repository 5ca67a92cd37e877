import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { request } from 'undici';
import { type RunningApp, startApp } from '../../src/app.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';

export interface V2xApp {
  app: RunningApp;
  base: string;
  mqttPort: number;
  dataDir: string;
  stop(): Promise<void>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answers
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  client(opts?: mqtt.IClientOptions): Promise<MqttClient>;
}

/** Kapok with edge (embedded broker, anonymous) and v2x on ephemeral ports; `v2x` merged over defaults. */
export async function startV2x(
  v2x: Record<string, unknown> = {},
  top: Record<string, unknown> = {},
): Promise<V2xApp> {
  const dir = mkdtempSync(join(tmpdir(), 'kapok-v2x-'));
  const config = testConfig({
    ...top,
    dataDir: dir,
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'info', requests: false },
    edge: {
      enabled: true,
      auth: { anonymous: true },
      // Since issue 13 nothing is allowed by default: these tests' anonymous clients get everything.
      acl: { grants: [{ who: 'anonymous', publish: ['#'], subscribe: ['#'] }] },
      mqtt: { port: 0, host: '127.0.0.1' },
    },
    v2x: { enabled: true, ...v2x },
  });
  const logs = captureLogs();
  const app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
  const mqttPort = Number(logs.lines.find((l) => l.msg === 'edge mqtt broker listening')?.port ?? 0);
  const base = `http://127.0.0.1:${app.port}`;
  return {
    app,
    base,
    mqttPort,
    dataDir: dir,
    async stop() {
      await app.stop('test');
      rmSync(dir, { recursive: true, force: true });
    },
    async call(method, path, body) {
      const res = await request(`${base}${path}`, {
        method: method as 'GET',
        ...(body === undefined
          ? {}
          : {
              body: typeof body === 'string' ? body : JSON.stringify(body),
              headers: { 'content-type': 'application/json' },
            }),
      });
      const text = await res.body.text();
      return { status: res.statusCode, body: text ? JSON.parse(text) : null };
    },
    async client(opts = {}) {
      const c = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, {
        reconnectPeriod: 0,
        connectTimeout: 5000,
        ...opts,
      });
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
      });
      return c;
    },
  };
}
