import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { request } from 'undici';
import { type RunningApp, startApp } from '../../src/app.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';

export const ADMIN = 'test-admin-token-0123456789';

export interface Gw {
  app: RunningApp;
  dataDir: string;
  /** Stops Kapok and removes its data dir; call from the suite's after(). */
  stop(): Promise<void>;
  base: string;
  logs: ReturnType<typeof captureLogs>;
  client(key: string, opts?: { maxRetries?: number; timeout?: number }): OpenAI;
  createKey(body?: Record<string, unknown>): Promise<{ id: string; key: string }>;
  admin(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the admin API answers
  ): Promise<{ status: number; body: any }>;
}

/** Starts Kapok with the gateway on an ephemeral port; `gateway` is merged over test defaults. */
export async function startGateway(
  gateway: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<Gw> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kapok-gw-'));
  const config = testConfig({
    dataDir,
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
    ...extra,
    gateway: { enabled: true, auth: { adminToken: ADMIN }, ...gateway },
  });
  const logs = captureLogs();
  const app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
  const base = `http://127.0.0.1:${app.port}`;
  const admin: Gw['admin'] = async (method, path, body) => {
    const res = await request(`${base}/api/gateway${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.statusCode, body: await res.body.json() };
  };
  return {
    app,
    dataDir,
    async stop() {
      await app.stop('test');
      rmSync(dataDir, { recursive: true, force: true });
    },
    base,
    logs,
    admin,
    client: (key, opts = {}) =>
      new OpenAI({
        apiKey: key,
        baseURL: `${base}/v1`,
        maxRetries: opts.maxRetries ?? 0,
        timeout: opts.timeout ?? 10_000,
      }),
    async createKey(body = {}) {
      const r = await admin('POST', '/keys', {
        name: `k${Math.random().toString(36).slice(2, 10)}`,
        ...body,
      });
      if (r.status !== 201) throw new Error(`key create failed: ${JSON.stringify(r.body)}`);
      return { id: r.body.id, key: r.body.key };
    },
  };
}
