/**
 * A real etcd (Debian's etcd-server: `etcd`) started by a test file on free ports with its own data
 * folder, so it needs no running service, only the binary. Gate a suite with `etcdAvailable()`
 * (skips, or fails under KAPOK_REQUIRE_SERVICES=1, when etcd is missing).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { serviceAvailable } from './services.js';

export function etcdAvailable(): Promise<{ skip: string | false }> {
  return serviceAvailable(
    'etcd',
    () =>
      new Promise<void>((resolve, reject) =>
        execFile('etcd', ['--version'], (err) => (err ? reject(err) : resolve())),
      ),
    { where: 'etcd on PATH (apt-get install etcd-server)' },
  );
}

export interface Etcd {
  /** host:port of the client URL. */
  endpoint: string;
  /** Starts (again, same data) and waits until it serves. */
  start(): Promise<void>;
  /** SIGTERM and wait for the exit; data stays. */
  stop(): Promise<void>;
  /** SIGKILL (an etcd crash). */
  kill(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startEtcd(): Promise<Etcd> {
  const dir = mkdtempSync(join(tmpdir(), 'kapok-etcd-'));
  const client = await freePort();
  const peer = await freePort();
  const endpoint = `127.0.0.1:${client}`;
  let proc: ChildProcess | undefined;
  const halt = async (sig: NodeJS.Signals) => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise((r) => {
      p.once('exit', r);
      p.kill(sig);
    });
  };
  const e: Etcd = {
    endpoint,
    async start() {
      proc = spawn(
        'etcd',
        [
          '--name',
          'kapok-test',
          '--data-dir',
          join(dir, 'data'),
          '--listen-client-urls',
          `http://${endpoint}`,
          '--advertise-client-urls',
          `http://${endpoint}`,
          '--listen-peer-urls',
          `http://127.0.0.1:${peer}`,
          '--initial-advertise-peer-urls',
          `http://127.0.0.1:${peer}`,
          '--initial-cluster',
          `kapok-test=http://127.0.0.1:${peer}`,
          '--log-level',
          'error',
          '--logger',
          'zap',
        ],
        { stdio: 'ignore' },
      );
      const end = Date.now() + 20_000;
      for (;;) {
        const ok = await fetch(`http://${endpoint}/health`).then(
          async (r) => r.ok && ((await r.json()) as { health?: string }).health === 'true',
          () => false,
        );
        if (ok) return;
        if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}`);
        if (Date.now() > end) throw new Error('etcd /health not true within 20000 ms');
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    async destroy() {
      await halt('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await e.start();
  return e;
}
