import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { createHttpServer, type FastifyInstance } from '../../src/core/http/server.js';
import { createLogger } from '../../src/core/log.js';
import { createMetrics } from '../../src/core/metrics.js';
import { createTracing, type Tracing } from '../../src/core/tracing.js';
import { testConfig } from '../helpers/config.js';
import { createHttpClient } from '../helpers/http-client.js';
import { captureLogs } from '../helpers/logs.js';

// Its own file, so its own process: no other test has installed the context manager here.
describe('tracing without an exporter (the default)', () => {
  const logs = captureLogs();
  let tracing: Tracing;
  let app: FastifyInstance;
  let upstream: Server;
  let seen: string | undefined;
  let base: string;

  before(async () => {
    tracing = await createTracing({ serviceName: 't', otlpEndpoint: null, sampleRatio: 1 });
    upstream = createServer((req, res) => {
      seen = req.headers.traceparent as string | undefined;
      res.end('ok');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const client = createHttpClient(tracing);
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
    app = createHttpServer({
      config: testConfig({ log: { level: 'info' } }),
      logger: createLogger({ level: 'info', destination: logs }),
      metrics: createMetrics(),
      tracing,
    });
    app.get('/work', async (req) => {
      req.log.info('inside handler');
      await new Promise((r) => setTimeout(r, 5));
      const res = await client.request(url, { parent: req.kapokSpan });
      await res.body.dump();
      return { ok: true };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await app.close();
    await new Promise((r) => upstream.close(r));
  });

  it('installs no async context manager (promise hooks cost throughput on Node 20)', () => {
    assert.equal(tracing.asyncContext, false);
  });

  it('still joins an incoming trace: request log lines and outgoing calls carry its trace id', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await request(`${base}/work`, {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const line = logs.lines.find((l) => l.msg === 'inside handler');
    assert.equal(line?.trace_id, traceId);
    assert.match(String(line?.span_id), /^[0-9a-f]{16}$/);
    const access = logs.lines.find((l) => l.msg === 'request' && l.route === '/work');
    assert.equal(access?.trace_id, traceId);
    assert.match(String(seen), new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });

  it('a malformed traceparent starts a new, unsampled trace: fresh ids in the logs and upstream', async () => {
    const zeros = `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01`;
    for (const bad of ['garbage', '00-xyz-abc-01', zeros, 'x'.repeat(5000)]) {
      const before = logs.lines.length;
      seen = undefined;
      const res = await request(`${base}/work`, { headers: { traceparent: bad } });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      const line = logs.lines.slice(before).find((l) => l.msg === 'inside handler');
      assert.match(String(line?.trace_id), /^[0-9a-f]{32}$/);
      assert.notEqual(line?.trace_id, '0'.repeat(32));
      const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(String(seen));
      assert.ok(m, `upstream traceparent for ${bad.slice(0, 20)}: ${seen}`);
      assert.equal(m[1], line?.trace_id, 'the upstream continues the new trace of the request');
      assert.notEqual(m[2], '0'.repeat(16));
    }
  });

  it('a request without traceparent gets its own trace id in its log lines', async () => {
    const before = logs.lines.length;
    await (await request(`${base}/work`)).body.dump();
    const line = logs.lines.slice(before).find((l) => l.msg === 'inside handler');
    assert.match(String(line?.trace_id), /^[0-9a-f]{32}$/);
  });

  it('trace ids are bound to each request alone: concurrent requests differ, the server logger has none', async () => {
    const before = logs.lines.length;
    await Promise.all(Array.from({ length: 8 }, async () => (await request(`${base}/work`)).body.dump()));
    const ids = logs.lines
      .slice(before)
      .filter((l) => l.msg === 'inside handler')
      .map((l) => l.trace_id);
    assert.equal(ids.length, 8);
    assert.equal(new Set(ids).size, 8, 'each request its own trace id');
    app.log.info('outside any request');
    const outside = logs.lines.find((l) => l.msg === 'outside any request');
    assert.equal(outside?.trace_id, undefined, 'no request binding leaked into the server logger');
  });
});
