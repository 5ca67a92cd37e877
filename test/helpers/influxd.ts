/**
 * A real InfluxDB 1.x (Debian's influxdb package: `influxd`) started by a test on free ports with
 * its own data folder, so it needs no running service, only the binary. Gate a suite with
 * `influxdAvailable()` (skips, or fails under KAPOK_REQUIRE_SERVICES=1, when influxd is missing).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { serviceAvailable } from './services.js';

export function influxdAvailable(): Promise<{ skip: string | false }> {
  return serviceAvailable(
    'influxdb',
    () =>
      new Promise<void>((resolve, reject) =>
        execFile('influxd', ['version'], (err) => (err ? reject(err) : resolve())),
      ),
    { where: 'influxd on PATH (apt-get install influxdb)' },
  );
}

export interface Influxd {
  url: string;
  /** Starts (again) and waits for /ping. */
  start(): Promise<void>;
  /** Stops it (SIGTERM) and waits for the exit; data stays. */
  stop(): Promise<void>;
  /** Stops it and removes its data folder. */
  destroy(): Promise<void>;
  /** An InfluxQL statement against `db` (POST /query, ms epochs); the parsed answer. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON InfluxDB answers
  query(q: string, db?: string): Promise<any>;
}

export async function startInfluxd(): Promise<Influxd> {
  const dir = mkdtempSync(join(tmpdir(), 'kapok-influx-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, 'influxdb.conf'),
    `reporting-disabled = true
bind-address = "127.0.0.1:${await freePort()}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:${port}"
  log-enabled = false
[monitor]
  store-enabled = false
`,
  );
  let proc: ChildProcess | undefined;
  const d: Influxd = {
    url,
    async start() {
      proc = spawn('influxd', ['-config', join(dir, 'influxdb.conf')], { stdio: 'ignore' });
      const end = Date.now() + 20_000;
      for (;;) {
        const status = await fetch(`${url}/ping`).then(
          (r) => r.status,
          () => 0,
        );
        if (status === 204) return;
        if (Date.now() > end) throw new Error('influxd answering /ping not met within 20000 ms');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      await new Promise((r) => {
        p.once('exit', r);
        p.kill('SIGTERM');
      });
    },
    async destroy() {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async query(q, db) {
      const r = await fetch(`${url}/query?epoch=ms${db ? `&db=${encodeURIComponent(db)}` : ''}`, {
        method: 'POST',
        body: new URLSearchParams({ q }),
      });
      return r.json();
    },
  };
  await d.start();
  return d;
}
