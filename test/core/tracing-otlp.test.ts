import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { type RunningApp, startApp } from '../../src/app.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * tracing.otlpEndpoint: spans are exported over OTLP/HTTP. The collector here is a fake (a collector
 * is outside the system): an HTTP server that records what is POSTed and answers 200. Its limits: it
 * decodes only the JSON encoding (what @opentelemetry/exporter-trace-otlp-http sends), checks no
 * schema beyond the fields asserted, and never answers partial success or back-pressure.
 * OTLP/HTTP JSON: OpenTelemetry Protocol specification, "OTLP/HTTP" (JSON Protobuf Encoding).
 */

interface Attr {
  key: string;
  value: { stringValue?: string; intValue?: string | number };
}
interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  parentSpanId?: string;
  attributes: Attr[];
}
interface Export {
  path: string;
  contentType: string;
  body: {
    resourceSpans: Array<{ resource: { attributes: Attr[] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
  };
}

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function fakeCollector(): Promise<{ url: string; exports: Export[] }> {
  const exports: Export[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let raw = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
    exports.push({
      path: req.url ?? '',
      contentType: String(req.headers['content-type']),
      body: JSON.parse(raw.toString('utf8')),
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, exports };
}

function start(otlpEndpoint: string): Promise<RunningApp> {
  const config = testConfig({
    dataDir: tmpDir('kapok-otlp-'),
    region: 'test-region',
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'info' },
    tracing: { otlpEndpoint, serviceName: 'kapok-otlp-test', sampleRatio: 1 },
  });
  return startApp(
    { config, file: null, envOverrides: new Map() },
    {
      logDestination: captureLogs(),
      extraRoutes: async (app) => {
        app.get('/work/:id', async (req) => ({ id: (req.params as { id: string }).id }));
      },
    },
  );
}

const attr = (attrs: Attr[], key: string) => {
  const v = attrs.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};

describe('tracing: OTLP/HTTP export (tracing.otlpEndpoint)', () => {
  it('a request becomes a SERVER span, exported with the service name, route and status', async () => {
    const collector = await fakeCollector();
    const app = await start(collector.url);
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await request(`http://127.0.0.1:${app.port}/work/7?x=1`, {
      headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` },
    });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    await app.stop('test'); // shutdown flushes the batch processor
    assert.ok(collector.exports.length > 0, 'the collector received an export');
    const first = collector.exports[0] as Export;
    assert.equal(first.path, '/v1/traces');
    assert.match(first.contentType, /application\/json/);
    const spans = collector.exports.flatMap((e) =>
      e.body.resourceSpans.flatMap((rs) =>
        rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ span, resource: rs.resource }))),
      ),
    );
    const found = spans.find((x) => x.span.name === 'GET /work/:id');
    assert.ok(found, `span 'GET /work/:id' among ${spans.map((x) => x.span.name).join(', ')}`);
    const { span, resource } = found;
    assert.equal(attr(resource.attributes, 'service.name'), 'kapok-otlp-test');
    assert.equal(attr(resource.attributes, 'cloud.region'), 'test-region');
    assert.equal(span.kind, 2, 'SPAN_KIND_SERVER');
    assert.equal(span.traceId.toLowerCase(), traceId, 'joins the incoming trace');
    assert.equal(span.parentSpanId?.toLowerCase(), 'b7ad6b7169203331');
    assert.equal(attr(span.attributes, 'http.request.method'), 'GET');
    assert.equal(attr(span.attributes, 'http.route'), '/work/:id');
    assert.equal(attr(span.attributes, 'url.path'), '/work/7');
    assert.equal(attr(span.attributes, 'http.response.status_code'), 200);
    assert.ok(!spans.some((x) => x.span.name.includes('/healthz')), 'probes are not traced');
  });

  it('a collector that is down fails no request, and the app still stops', async () => {
    // A port that was just ours and is closed now: connections to it are refused.
    const gone = createServer();
    gone.listen(0, '127.0.0.1');
    await once(gone, 'listening');
    const port = (gone.address() as AddressInfo).port;
    await new Promise((r) => gone.close(r));
    const app = await start(`http://127.0.0.1:${port}/v1/traces`);
    for (let i = 0; i < 5; i++) {
      const res = await request(`http://127.0.0.1:${app.port}/work/${i}`);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(await res.body.json(), { id: String(i) });
    }
    // The exporter would retry the refused collector for 10 s; the stop caps the flush at 2 s.
    // A bound on a wait, not a speed target: without the cap this took about 8 s.
    const t0 = Date.now();
    await app.stop('test');
    assert.ok(Date.now() - t0 < 6000, `stop took ${Date.now() - t0} ms`);
  });
});
