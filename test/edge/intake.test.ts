import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Edge, startEdge, until } from './setup.js';

describe('edge: embedded broker end to end', () => {
  let e: Edge;
  before(async () => {
    e = await startEdge();
  });
  after(() => e.stop());

  it('stores QoS 1 JSON over TCP and answers /api/edge/query and /devices', async () => {
    const c = await e.client();
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 10; i++)
      await c.publishAsync(
        'telemetry/pump-1/env',
        JSON.stringify({ ts: t0 + i * 1000, temp: 20 + i, on: true }),
        { qos: 1 },
      );
    await c.endAsync();
    const q = `/api/edge/query?measurement=env&field=temp&device=pump-1&from=${t0}&to=${t0 + 10_000}`;
    const r = await until(async () => {
      const r = await e.get(q);
      return r.body.points?.length === 10 ? r : null;
    });
    assert.deepEqual(
      r.body.points.map((p: { value: number }) => p.value),
      [20, 21, 22, 23, 24, 25, 26, 27, 28, 29],
    );
    const w = await e.get(`${q}&every=5s&agg=max`);
    assert.equal(w.status, 200);
    assert.deepEqual(w.body.points, [
      { ts: t0, value: 24 },
      { ts: t0 + 5000, value: 29 },
    ]);
    const last = await e.get(`${q}&every=5s&agg=last`);
    assert.deepEqual(
      last.body.points.map((p: { value: number }) => p.value),
      [24, 29],
    );
    const d = await e.get('/api/edge/devices');
    assert.equal(d.body.devices[0].device, 'pump-1');
    assert.equal(d.body.devices[0].latest.temp, 29);
    assert.equal(d.body.devices[0].lastSeen, new Date(t0 + 9000).toISOString());
  });

  it('takes line protocol over MQTT-over-WebSocket on the HTTP port', async () => {
    const c = await e.client({ ws: true });
    await c.publishAsync(
      'telemetry/rsu-7/ignored',
      'power,phase=a watts=1500i,ok=t 1767225600000000000\npower watts=7u 1767225601000000000',
      { qos: 1 },
    );
    await c.endAsync();
    const r = await until(async () => {
      const r = await e.get(
        '/api/edge/query?measurement=power&field=watts&device=rsu-7&from=1767225600000&to=1767225602000',
      );
      return r.body.points?.length === 2 ? r : null;
    });
    assert.deepEqual(r.body.points, [
      { ts: 1767225600000, value: 1500 },
      { ts: 1767225601000, value: 7 },
    ]);
  });

  it('dead-letters undecodable payloads, acknowledges them, and keeps going', async () => {
    const c = await e.client();
    await c.publishAsync('telemetry/bad-1/env', '{"temp": ', { qos: 1 });
    await c.publishAsync('telemetry/bad-1/env', Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 });
    await c.publishAsync('telemetry/ok-1/env', '{"temp": 1}', { qos: 1 });
    await c.endAsync();
    const dl = await e.get('/api/edge/dead-letters');
    assert.equal(dl.status, 200);
    const mine = dl.body.deadLetters.filter((d: { topic: string }) => d.topic === 'telemetry/bad-1/env');
    assert.equal(mine.length, 2);
    assert.match(mine[0].reason, /invalid JSON/);
    assert.equal(Buffer.from(mine[0].payloadBase64, 'base64').toString(), '{"temp": ');
    assert.match(mine[1].reason, /UTF-8/);
    await until(async () =>
      (await e.get('/api/edge/devices')).body.devices.some((d: { device: string }) => d.device === 'ok-1'),
    );
    const m = await e.app.metrics.render();
    assert.match(m, /kapok_edge_decode_failed_total\{region="guangzhou"\} 2/);
  });

  it('answers clear 400s for bad queries', async () => {
    const cases: [string, string, RegExp][] = [
      ['/api/edge/query?field=x', 'KAPOK_EDGE_BAD_QUERY', /measurement is required/],
      ['/api/edge/query?measurement=m&field=x&from=10&to=5', 'KAPOK_EDGE_BAD_QUERY', /must be before/],
      [
        '/api/edge/query?measurement=m&field=x&from=0&to=5&every=1m&agg=median',
        'KAPOK_EDGE_BAD_QUERY',
        /agg=median/,
      ],
      ['/api/edge/query?measurement=m&field=x&every=7parsecs', 'KAPOK_EDGE_BAD_QUERY', /duration/],
      ['/api/edge/query?measurement=m&field=x&from=nonsense', 'KAPOK_EDGE_BAD_QUERY', /from=nonsense/],
      [
        '/api/edge/query?measurement=m&measurement=n&field=x',
        'KAPOK_HTTP_BAD_REQUEST',
        /parameter measurement is given more than once/,
      ],
      ['/api/edge/query?measurement=m&field=x&to=1&to=2', 'KAPOK_HTTP_BAD_REQUEST', /parameter to /],
      ['/api/edge/dead-letters?limit=1&limit=2', 'KAPOK_HTTP_BAD_REQUEST', /parameter limit /],
      [
        '/api/edge/query?measurement=m&field=x&from=0&to=100000000000&every=1ms',
        'KAPOK_EDGE_TOO_MANY_POINTS',
        /maxPoints/,
      ],
    ];
    for (const [path, code, msg] of cases) {
      const r = await e.get(path);
      assert.equal(r.status, 400, path);
      assert.equal(r.body.error.code, code, path);
      assert.match(r.body.error.message, msg, path);
    }
  });
});
