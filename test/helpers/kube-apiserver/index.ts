import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { KubeApiServer, type KubeApiServerOptions } from './server.js';
import type { Obj } from './store.js';

export { KubeApiServer } from './server.js';
export type { Obj } from './store.js';

export interface RunningApiServer {
  api: KubeApiServer;
  url: string;
  /** Writes a kubeconfig pointing at this server into dir and returns its path. */
  kubeconfig(dir: string): string;
  /** Creates an object as a client would (no HTTP): for seeding nodes and CRDs. */
  create(group: string, version: string, plural: string, namespace: string | null, body: Obj): Obj;
  close(): Promise<void>;
}

/** Starts the test API server on an ephemeral port of 127.0.0.1. */
export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<RunningApiServer> {
  const api = new KubeApiServer(opts);
  await new Promise<void>((ok) => api.server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  return {
    api,
    url,
    kubeconfig(dir) {
      const file = join(dir, 'kubeconfig');
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          // client-node refuses plain http unless TLS verification is marked skipped (there is no TLS to verify).
          clusters: [{ name: 'test', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
          users: [{ name: 'test', user: {} }],
          contexts: [{ name: 'test', context: { cluster: 'test', user: 'test', namespace: 'default' } }],
          'current-context': 'test',
        }),
      );
      return file;
    },
    create: (group, version, plural, namespace, body) =>
      api.store.create(`${group}/${version}/${plural}`, namespace, body),
    close: () => api.close(),
  };
}
