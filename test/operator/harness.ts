import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createKubeClient } from '../../src/adapters/kubernetes/client.js';
import { Health } from '../../src/core/health.js';
import { createLogger } from '../../src/core/log.js';
import { core, validateSpec } from '../../src/jobs/index.js';
import { operatorSchema } from '../../src/operator/config.js';
import { createOperator } from '../../src/operator/index.js';
import type { Capability } from '../../src/ports/capability.js';
import type { KubeClient } from '../../src/ports/kubernetes.js';
import { type Obj, type RunningApiServer, startKubeApiServer } from '../helpers/kube-apiserver/index.js';
import { captureLogs } from '../helpers/logs.js';

export const root = join(import.meta.dirname, '../..');
export const CRD = parse(readFileSync(join(root, 'deploy/kubernetes/crd-aijob.yaml'), 'utf8')) as Obj;
export const AIJOBS = 'kapok.io/v1alpha1/aijobs';
export const PODS = '/v1/pods';

/** The test API server with the AIJob CRD installed, as `kubectl apply -f crd-aijob.yaml` would. */
export async function cluster(
  opts: { bookmarkMs?: number; maxLog?: number } = {},
): Promise<RunningApiServer> {
  const s = await startKubeApiServer({
    bookmarkMs: opts.bookmarkMs ?? 200,
    ...(opts.maxLog ? { maxLog: opts.maxLog } : {}),
  });
  s.create('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', null, CRD);
  return s;
}

export interface RunningOperator {
  cap: Capability;
  kube: KubeClient;
  logs: ReturnType<typeof captureLogs>;
  health: Health;
  stop(): Promise<void>;
}

/** One operator replica (the capability as app.ts builds it) against the server in `dir`'s kubeconfig. */
export async function startOperator(
  s: RunningApiServer,
  dir: string,
  over: Record<string, unknown> = {},
): Promise<RunningOperator> {
  const config = operatorSchema.parse({
    enabled: true,
    kubeconfig: s.kubeconfig(dir),
    retryBaseMs: 20,
    retryMaxMs: 500,
    watchIdleMs: 5000,
    leaderElection: { enabled: false },
    ...over,
  });
  const kube = createKubeClient({
    kubeconfig: config.kubeconfig,
    qps: config.qps,
    burst: config.burst,
    watchIdleMs: config.watchIdleMs,
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
    timeoutMs: config.requestTimeoutMs,
  });
  const logs = captureLogs();
  const health = new Health();
  const ctx = {
    config,
    logger: createLogger({ level: 'info', destination: logs }),
    metrics: { registry: new Registry() },
    health,
  } as unknown as Parameters<typeof createOperator>[0];
  const cap = await createOperator(ctx, { kube, model: { ...core, validateSpec } });
  await cap.start?.();
  return { cap, kube, logs, health, stop: () => cap.stop?.() ?? Promise.resolve() };
}

/** An AIJob object (spec as given, image filled in). */
export function aijob(name: string, spec: Obj, namespace = 'default'): Obj {
  return {
    apiVersion: 'kapok.io/v1alpha1',
    kind: 'AIJob',
    metadata: { name, namespace },
    spec: { image: 'busybox:1.36', ...spec },
  };
}

/** Polls until check returns a value (not undefined/false), or fails after ms with what it last saw. */
export async function until<T>(
  what: string,
  check: () => T | undefined | null | false,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

export const job = (s: RunningApiServer, name: string, ns = 'default'): Obj | undefined => {
  try {
    return s.api.store.get(AIJOBS, ns, name);
  } catch {
    return undefined;
  }
};
