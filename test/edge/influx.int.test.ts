import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serviceAvailable } from '../helpers/services.js';
import { type Edge, startEdge, until } from './setup.js';

// A real InfluxDB 1.x (Debian's influxdb package: `influxd`), started by this test on a free port
// with its own data folder, so it needs no running service, only the binary.
const { skip } = await serviceAvailable(
  'influxdb',
  () =>
    new Promise<void>((resolve, reject) =>
      execFile('influxd', ['version'], (err) => (err ? reject(err) : resolve())),
    ),
  { where: 'influxd on PATH (apt-get install influxdb)' },
);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('edge influx sink against a real InfluxDB 1.x (needs influxd)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kapok-influx-'));
  let influx: ChildProcess | undefined;
  let url = '';
  let e: Edge;

  const startInflux = async () => {
    influx = spawn('influxd', ['-config', join(dir, 'influxdb.conf')], { stdio: 'ignore' });
    await until(
      async () =>
        (await fetch(`${url}/ping`).then(
          (r) => r.status,
          () => 0,
        )) === 204,
      20_000,
      'influxd answering /ping',
    );
  };
  const stopInflux = async () => {
    const p = influx;
    if (!p || p.exitCode !== null) return;
    await new Promise((r) => {
      p.once('exit', r);
      p.kill('SIGTERM');
    });
  };
  const count = async (): Promise<number> => {
    const r = await fetch(
      `${url}/query?db=tele&q=${encodeURIComponent('SELECT count(temp) FROM env')}`,
    ).catch(() => null);
    if (!r?.ok) return -1;
    const j = (await r.json()) as { results: Array<{ series?: Array<{ values: unknown[][] }> }> };
    return Number(j.results[0]?.series?.[0]?.values[0]?.[1] ?? 0);
  };

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
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
    await startInflux();
    await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ q: 'CREATE DATABASE tele' }) });
    e = await startEdge({
      sinks: [{ type: 'influx', url, version: 1, db: 'tele' }],
      retry: { minMs: 20, maxMs: 200 },
    });
  });
  after(async () => {
    await e?.stop();
    await stopInflux();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes every acknowledged point, and all arrive after an InfluxDB outage', async () => {
    const c = await e.client();
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < 20; i++)
      await c.publishAsync('telemetry/pump-1/env', JSON.stringify({ temp: i, ts: t0 + i }), { qos: 1 });
    await until(async () => (await count()) === 20, 10_000, '20 points in InfluxDB');

    await stopInflux();
    // Acknowledged while the sink is down: spooled, then retried with backoff.
    for (let i = 20; i < 30; i++)
      await c.publishAsync('telemetry/pump-1/env', JSON.stringify({ temp: i, ts: t0 + i }), { qos: 1 });
    await c.endAsync();
    await new Promise((r) => setTimeout(r, 300));
    await startInflux();
    await until(async () => (await count()) === 30, 15_000, 'all 30 points after the outage');
    const r = await fetch(
      `${url}/query?db=tele&q=${encodeURIComponent("SELECT max(temp) FROM env WHERE device = 'pump-1'")}`,
    );
    const j = (await r.json()) as { results: Array<{ series: Array<{ values: unknown[][] }> }> };
    assert.equal(j.results[0]?.series[0]?.values[0]?.[1], 29);
  });
});
