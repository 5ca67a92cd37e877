import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { toLineProtocol } from '../../src/adapters/influx/line-protocol.js';
import { decodeLineProtocol } from '../../src/edge/decode/line-protocol.js';
import { type Edge, startEdge, until } from './setup.js';

/**
 * A FAKE InfluxDB HTTP write endpoint: records each request and answers `status`.
 *
 * Why a fake for version 2: no InfluxDB with `/api/v2/write` can be installed here. Debian ships
 * influxdb 1.6.7 (test/helpers/influxd.ts runs it for the v1 tests), and the v2 compatibility
 * endpoint arrived in InfluxDB 1.8.0; no npm package ships an `influxd` 2 binary.
 * What it checks, through a running Kapok: the request the sink sends (URL `/api/v2/write` with
 * `org`, `bucket` and `precision=ms`, the `Authorization: Token …` header, gzip, the line-protocol
 * body) and what edge does with the status it is given (503 retried, 400 counted as rejected).
 * What it cannot: that a real InfluxDB 2 accepts that request (parameter names and values, the
 * token scheme, gzip, field types), and the real bodies of its errors (a v2 400 is JSON
 * `{"code":"invalid",…}`, so the count of refused points is not read from a real answer).
 */
async function fakeInflux() {
  const got: { url: string; headers: IncomingMessage['headers']; body: string }[] = [];
  const state = { status: 204, got };
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    if (req.url?.startsWith('/ping') || req.url?.startsWith('/health')) return void res.writeHead(204).end();
    got.push({
      url: req.url ?? '',
      headers: req.headers,
      body: req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString(),
    });
    res
      .writeHead(state.status, { 'content-type': 'application/json' })
      .end(state.status === 204 ? '' : '{"error":"fake says no"}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    ...state,
    state,
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise((r) => server.close(r)),
  };
}

describe('edge influx sink (against a fake write endpoint)', () => {
  let fake: Awaited<ReturnType<typeof fakeInflux>>;
  let e: Edge;
  before(async () => {
    fake = await fakeInflux();
    fake.state.status = 503; // down at first
    e = await startEdge({
      sinks: [{ type: 'influx', url: `${fake.url}/`, version: 2, db: 'tele', org: 'gz', token: 'tok-123' }],
      retry: { minMs: 5, maxMs: 20 },
    });
  });
  after(async () => {
    await e.stop();
    await fake.close();
  });

  it('retries through 503, then writes gzip line protocol to /api/v2/write with the token', async () => {
    const c = await e.client();
    await c.publishAsync(
      'telemetry/in-1/env',
      'env,site=g\\ z v=1.5,n=3i,ok=t,s="a \\"b\\"" 1767225600000000000',
      { qos: 1 },
    );
    await c.endAsync();
    await until(() => fake.state.got.length >= 2, 10_000, 'a retry after 503');
    fake.state.status = 204;
    await until(async () =>
      /kapok_edge_stored_points_total\{sink="influx-0"[^}]*\} 1/.test(await e.app.metrics.render()),
    );
    const last = fake.state.got.at(-1);
    assert.match(last?.url ?? '', /^\/api\/v2\/write\?org=gz&bucket=tele&precision=ms$/);
    assert.equal(last?.headers.authorization, 'Token tok-123');
    assert.equal(last?.headers['content-encoding'], 'gzip');
    assert.equal(last?.body, 'env,device=in-1,site=g\\ z v=1.5,n=3,ok=true,s="a \\"b\\"" 1767225600000\n');
  });

  it('a 400 (bad data) is counted as rejected and not retried forever', async () => {
    fake.state.status = 400;
    const before = fake.state.got.length;
    const c = await e.client();
    await c.publishAsync('telemetry/in-2/env', '{"v":1}', { qos: 1 });
    await c.endAsync();
    await until(async () =>
      /kapok_edge_dropped_total\{reason="sink_rejected"[^}]*\} 1/.test(await e.app.metrics.render()),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fake.state.got.length, before + 1, 'sent once');
    fake.state.status = 204;
  });

  it('serializes what the decoder reads back identically (round trip)', () => {
    const text = 'm\\ x,a\\,b=c\\=d,device=d1 f\\ 1="q\\\\\\"",g=-2.5,h=false 1000000';
    const pts = decodeLineProtocol(text, 'dev', 0);
    const again = decodeLineProtocol(toLineProtocol(pts), 'dev', 0, 'ms');
    assert.deepEqual(JSON.parse(JSON.stringify(again)), JSON.parse(JSON.stringify(pts)));
  });
});
