import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { toLineProtocol } from '../../src/adapters/influx/line-protocol.js';
import { decodeLineProtocol } from '../../src/edge/decode/line-protocol.js';
import { type Edge, startEdge, until } from './setup.js';

/** A FAKE InfluxDB HTTP write endpoint (the real one is not installed here): records and answers `status`. */
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
