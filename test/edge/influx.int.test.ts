import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Influxd, influxdAvailable, startInfluxd } from '../helpers/influxd.js';
import { type Edge, startEdge, until } from './setup.js';

// A real InfluxDB 1.x started by this test on a free port (test/helpers/influxd.ts).
const { skip } = await influxdAvailable();

describe('edge influx sink against a real InfluxDB 1.x (needs influxd)', { skip }, () => {
  let influx: Influxd;
  let url = '';
  let e: Edge;

  const count = async (): Promise<number> => {
    const r = await fetch(
      `${url}/query?db=tele&q=${encodeURIComponent('SELECT count(temp) FROM env')}`,
    ).catch(() => null);
    if (!r?.ok) return -1;
    const j = (await r.json()) as { results: Array<{ series?: Array<{ values: unknown[][] }> }> };
    return Number(j.results[0]?.series?.[0]?.values[0]?.[1] ?? 0);
  };

  before(async () => {
    influx = await startInfluxd();
    url = influx.url;
    await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ q: 'CREATE DATABASE tele' }) });
    e = await startEdge({
      sinks: [{ type: 'influx', url, version: 1, db: 'tele' }],
      retry: { minMs: 20, maxMs: 200 },
    });
  });
  after(async () => {
    await e?.stop();
    await influx?.destroy();
  });

  it('writes every acknowledged point, and all arrive after an InfluxDB outage', async () => {
    const c = await e.client();
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < 20; i++)
      await c.publishAsync('telemetry/pump-1/env', JSON.stringify({ temp: i, ts: t0 + i }), { qos: 1 });
    await until(async () => (await count()) === 20, 10_000, '20 points in InfluxDB');

    await influx.stop();
    // Acknowledged while the sink is down: spooled, then retried with backoff.
    for (let i = 20; i < 30; i++)
      await c.publishAsync('telemetry/pump-1/env', JSON.stringify({ temp: i, ts: t0 + i }), { qos: 1 });
    await c.endAsync();
    await new Promise((r) => setTimeout(r, 300));
    await influx.start();
    await until(async () => (await count()) === 30, 15_000, 'all 30 points after the outage');
    const r = await fetch(
      `${url}/query?db=tele&q=${encodeURIComponent("SELECT max(temp) FROM env WHERE device = 'pump-1'")}`,
    );
    const j = (await r.json()) as { results: Array<{ series: Array<{ values: unknown[][] }> }> };
    assert.equal(j.results[0]?.series[0]?.values[0]?.[1], 29);
  });
});
