import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { convModel, mlpModel, typesModel, writeModel } from '../../scripts/onnx-models.js';
import { type RunningApp, startApp } from '../../src/app.js';
import { liveInstances } from '../../src/inference/capability.js';
import type { InferenceService } from '../../src/inference/service.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';

export { until } from '../edge/setup.js';

export interface Server {
  app: RunningApp;
  repo: string;
  base: string;
  grpcPort: number;
  service: InferenceService;
  logs: ReturnType<typeof captureLogs>;
  stop(): Promise<void>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answers
  get(path: string): Promise<{ status: number; body: any }>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answers
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
}

/** A temporary repository with the given models (default: mlp, conv, types at version 1). */
export function makeRepository(models: Record<string, Uint8Array> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'kapok-models-'));
  const all = Object.keys(models).length
    ? models
    : { mlp: mlpModel(), conv: convModel(), types: typesModel() };
  for (const [name, bytes] of Object.entries(all)) writeModel(dir, name, 1, bytes);
  return dir;
}

export function writeConfig(repo: string, model: string, yaml: string): void {
  writeFileSync(join(repo, model, 'config.yaml'), yaml);
}

/** Starts Kapok with inference on ephemeral HTTP and gRPC ports. */
export async function startInference(
  inference: Record<string, unknown> = {},
  repo = makeRepository(),
  top: Record<string, unknown> = {},
): Promise<Server> {
  const config = testConfig({
    ...top,
    dataDir: mkdtempSync(join(tmpdir(), 'kapok-inf-data-')),
    http: { host: '127.0.0.1', port: 0 },
    grpc: { port: 0 },
    log: { level: 'info', requests: false },
    inference: { enabled: true, repository: repo, pollIntervalMs: 0, ...inference },
  });
  const logs = captureLogs();
  const before = new Set(liveInstances);
  const app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
  const service = [...liveInstances].find((s) => !before.has(s)) as InferenceService;
  const line = logs.lines.find((l) => l.msg === 'inference gRPC listening');
  const base = `http://127.0.0.1:${app.port}`;
  return {
    app,
    repo,
    base,
    grpcPort: Number(line?.port ?? 0),
    service,
    logs,
    async stop() {
      await app.stop('test');
      rmSync(repo, { recursive: true, force: true });
      rmSync(config.dataDir, { recursive: true, force: true });
    },
    async get(path) {
      const res = await request(`${base}${path}`);
      const text = await res.body.text();
      return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
    },
    async post(path, body, headers = {}) {
      const res = await request(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: the test sees the text
      }
      return { status: res.statusCode, body: parsed };
    },
  };
}

/** A row of 16 features for the MLP. */
export function mlpRow(seed: number): number[] {
  return Array.from({ length: 16 }, (_, i) => Math.sin(seed * 31 + i) * 2);
}
