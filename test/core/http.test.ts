import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { request } from 'undici';
import { KapokError } from '../../src/core/errors.js';
import { Health } from '../../src/core/health.js';
import { probeRoutes } from '../../src/core/http/probes.js';
import { createHttpServer, type FastifyInstance } from '../../src/core/http/server.js';
import { createLogger } from '../../src/core/log.js';
import { createMetrics } from '../../src/core/metrics.js';
import { createTracing, type Tracing } from '../../src/core/tracing.js';
import { testConfig } from '../helpers/config.js';
import { createHttpClient } from '../helpers/http-client.js';
import { captureLogs } from '../helpers/logs.js';
import { promtoolCheck } from '../helpers/probes.js';

const config = testConfig({
  region: 'test-region',
  http: { bodyLimitBytes: 4096 },
  log: { level: 'debug' },
});
const logs = captureLogs();
const exporter = new InMemorySpanExporter();
let app: FastifyInstance;
let base: string;
let tracing: Tracing;
let health: Health;
let upstream: Server;
let upstreamHeaders: Record<string, string | string[] | undefined> = {};

before(async () => {
  const logger = createLogger({ level: 'debug', destination: logs });
  const metrics = createMetrics();
  tracing = await createTracing({
    serviceName: 'test',
    otlpEndpoint: null,
    sampleRatio: 1,
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  health = new Health(200);
  upstream = createServer((req, res) => {
    upstreamHeaders = req.headers;
    res.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
  const client = createHttpClient(tracing);

  app = createHttpServer({ config, logger, metrics, tracing });
  await app.register(probeRoutes, { region: config.region, health, metrics });
  await app.register(
    async (scope) => {
      scope.get('/items/:id', async (req) => {
        req.log.info('inside handler');
        return { id: (req.params as { id: string }).id };
      });
      scope.post('/echo', async (req) => ({ got: req.body }));
      scope.get('/boom', async () => {
        throw new Error('secret internal detail');
      });
      scope.get('/teapot', async () => {
        throw new KapokError('KAPOK_HTTP_BAD_REQUEST', 'field x must be a number');
      });
      scope.get('/call-out', async () => {
        const res = await client.request(upstreamUrl);
        await res.body.text();
        return { status: res.statusCode };
      });
    },
    { prefix: '/api/test' },
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

after(async () => {
  await app.close();
  await tracing.shutdown();
  upstream.close();
});

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await request(base + path, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

describe('http: probes', () => {
  it('/healthz answers the contract shape', async () => {
    const r = await get('/healthz');
    assert.equal(r.status, 200);
    const body = r.json();
    assert.deepEqual(Object.keys(body).sort(), ['region', 'status', 'timestamp']);
    assert.equal(body.status, 'ok');
    assert.equal(body.region, 'test-region');
    assert.match(body.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.ok(Math.abs(Date.parse(body.timestamp) - Date.now()) < 5000, 'timestamp is now, in UTC');
  });

  it('/readyz is 200 when all components are ready and 503 listing the one that is not', async () => {
    let ok = true;
    health.register({
      name: 'flappy',
      kind: 'backend',
      check: () => ({ ready: ok, detail: ok ? 'fine' : 'down' }),
    });
    health.register({ name: 'stuck', kind: 'capability', check: () => new Promise(() => {}) as never });
    const stuck = await get('/readyz');
    assert.equal(stuck.status, 503, 'a check that never answers times out as not ready');
    const s = stuck.json().components.find((c: { name: string }) => c.name === 'stuck');
    assert.equal(s.state, 'not_ready');
    assert.match(s.detail, /timed out/);
    ok = false;
    const r = await get('/readyz');
    assert.equal(r.status, 503);
    const flappy = r.json().components.find((c: { name: string }) => c.name === 'flappy');
    assert.deepEqual(flappy, { name: 'flappy', kind: 'backend', state: 'not_ready', detail: 'down' });
  });
});

describe('http: errors are JSON with catalogue codes', () => {
  it('unknown routes answer 404 JSON', async () => {
    const r = await get('/nope/<script>?q=1');
    assert.equal(r.status, 404);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.equal(r.json().error.code, 'KAPOK_HTTP_NOT_FOUND');
    assert.match(r.json().error.message, /GET \/nope/);
    assert.ok(!r.json().error.message.includes('q=1'), 'query strings are not echoed');
  });

  it('an oversized body gets 413 JSON naming the limit', async () => {
    const res = await request(`${base}/api/test/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ x: 'y'.repeat(10_000) }),
    });
    const body = (await res.body.json()) as { error: { code: string; message: string } };
    assert.equal(res.statusCode, 413);
    assert.equal(body.error.code, 'KAPOK_HTTP_BODY_TOO_LARGE');
    assert.match(body.error.message, /4096 bytes.*http\.bodyLimitBytes/);
  });

  it('malformed and truncated JSON get 400, and the server keeps serving', async () => {
    for (const bad of ['{"x":', '{x:1}', '\u0000\u0001', '[1,2']) {
      const res = await request(`${base}/api/test/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: bad,
      });
      const body = (await res.body.json()) as { error: { code: string } };
      assert.equal(res.statusCode, 400, `body ${JSON.stringify(bad)}`);
      assert.equal(body.error.code, 'KAPOK_HTTP_BAD_REQUEST');
    }
    const ok = await request(`${base}/api/test/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    assert.deepEqual(await ok.body.json(), { got: { a: 1 } });
  });

  it('a JSON body nested 100k deep gets 400, not 500; 128 levels still parse', async () => {
    const srv = createHttpServer({
      config: testConfig({}),
      logger: createLogger({ level: 'silent' }),
      metrics: createMetrics(),
      tracing,
    });
    srv.post('/echo', async (req) => ({ got: req.body }));
    await srv.listen({ port: 0, host: '127.0.0.1' });
    try {
      const url = `http://127.0.0.1:${(srv.server.address() as AddressInfo).port}/echo`;
      const post = async (body: string) => {
        const r = await request(url, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
        });
        return {
          status: r.statusCode,
          body: (await r.body.json()) as { error?: { code: string; message: string } },
        };
      };
      for (const deep of [
        '['.repeat(100_000) + ']'.repeat(100_000),
        `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`,
      ]) {
        const r = await post(deep);
        assert.equal(r.status, 400);
        assert.equal(r.body.error?.code, 'KAPOK_HTTP_BAD_REQUEST');
        assert.match(r.body.error?.message ?? '', /deeper than 128 levels/);
      }
      assert.equal((await post('['.repeat(128) + ']'.repeat(128))).status, 200);
      assert.equal(
        (await post(`["${'['.repeat(500)}"]`)).status,
        200,
        'brackets inside strings do not count',
      );
      assert.equal(
        (await post('{"__proto__":{"x":1}}')).status,
        400,
        "Fastify's prototype-poisoning check stays",
      );
    } finally {
      await srv.close();
    }
  });

  it('an unsupported content type gets 415', async () => {
    const res = await request(`${base}/api/test/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-evil' },
      body: 'x',
    });
    assert.equal(res.statusCode, 415);
    assert.equal(
      ((await res.body.json()) as { error: { code: string } }).error.code,
      'KAPOK_HTTP_UNSUPPORTED_MEDIA_TYPE',
    );
  });

  it('an unexpected error is a 500 that hides its detail from the client but logs it', async () => {
    const r = await get('/api/test/boom');
    assert.equal(r.status, 500);
    assert.equal(r.json().error.code, 'KAPOK_INTERNAL');
    assert.ok(!r.text.includes('secret internal detail'));
    const line = logs.lines.find((l) => l.msg === 'request failed');
    assert.ok(line && JSON.stringify(line).includes('secret internal detail'));
  });

  it('a repeated query parameter gets 400 naming it, on every route', async () => {
    for (const path of ['/api/test/items/1?a=1&a=2', '/healthz?a=1&a=2', '/nowhere?a=1&a=2']) {
      const r = await get(path);
      assert.equal(r.status, 400, path);
      assert.deepEqual(r.json().error, {
        code: 'KAPOK_HTTP_BAD_REQUEST',
        message: 'query parameter a is given more than once: give it once',
      });
    }
    assert.equal((await get('/api/test/items/1?a=1&b=2')).status, 200);
  });

  it('a KapokError keeps its status and message', async () => {
    const r = await get('/api/test/teapot');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json(), {
      error: { code: 'KAPOK_HTTP_BAD_REQUEST', message: 'field x must be a number' },
    });
  });
});

describe('http: request ids, tracing and logs', () => {
  it('echoes a sane X-Request-Id and replaces a hostile one', async () => {
    assert.equal((await get('/healthz', { 'x-request-id': 'abc-123' })).headers['x-request-id'], 'abc-123');
    const hostile = (await get('/healthz', { 'x-request-id': 'a b <x> "quoted"' })).headers['x-request-id'];
    assert.match(String(hostile), /^[0-9a-f-]{36}$/);
  });

  it('joins an incoming traceparent: log lines and the server span carry its trace id', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await get('/api/test/items/42', { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    const line = logs.lines.find((l) => l.msg === 'inside handler' && l.trace_id === traceId);
    assert.ok(line, 'handler log line carries trace_id');
    assert.match(String(line.span_id), /^[0-9a-f]{16}$/);
    const span = exporter.getFinishedSpans().find((s) => s.spanContext().traceId === traceId);
    assert.ok(span);
    assert.equal(span.name, 'GET /api/test/items/:id', 'span named by route template');
    assert.equal(span.parentSpanContext?.spanId, '00f067aa0ba902b7');
  });

  it('propagates the trace on outgoing calls', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const r = await get('/api/test/call-out', { traceparent: `00-${traceId}-b7ad6b7169203331-01` });
    assert.equal(r.json().status, 200);
    assert.match(String(upstreamHeaders.traceparent), new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });

  it('ignores a malformed traceparent (new trace, debug line) and still answers', async () => {
    for (const bad of [
      'garbage',
      '00-xyz-abc-01',
      `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01`,
      'x'.repeat(5000),
    ]) {
      const r = await get('/api/test/items/1', { traceparent: bad });
      assert.equal(r.status, 200);
    }
    const debug = logs.lines.filter((l) => l.msg === 'malformed traceparent ignored');
    assert.ok(debug.length >= 4);
    assert.ok(debug.every((l) => l.level === 'debug' && String(l.traceparent).length <= 100));
  });

  it('writes one access line per request, none for probes', async () => {
    const before = logs.lines.length;
    await get('/api/test/items/7');
    await get('/healthz');
    const access = logs.lines.slice(before).filter((l) => l.msg === 'request');
    assert.equal(access.length, 1);
    assert.equal(access[0]?.route, '/api/test/items/:id');
    assert.equal(access[0]?.status, 200);
  });

  it('redacts secrets in log lines', () => {
    const cap = captureLogs();
    const logger = createLogger({ level: 'info', destination: cap, redact: ['custom.field'] });
    logger.info(
      {
        req: { headers: { authorization: 'Bearer sk-live-1', cookie: 'c=1' } },
        db: { password: 'hunter2', url: 'postgres://u:p@h/d' },
        custom: { field: 'x1' },
      },
      'hello',
    );
    const text = cap.text();
    for (const secret of ['sk-live-1', 'hunter2', 'u:p@h', 'c=1', 'x1'])
      assert.ok(!text.includes(secret), `leaked ${secret}`);
    assert.ok(text.includes('***'));
  });
});

describe('http: metrics', () => {
  it('labels request durations by route template, never the raw URL', async () => {
    await get('/api/test/items/secret-id-123');
    await get('/nope/also-secret');
    const text = (await get('/metrics')).text;
    assert.match(
      text,
      /kapok_http_request_duration_seconds_count\{route="\/api\/test\/items\/:id",method="GET",status_code="200"\} \d+/,
    );
    assert.match(
      text,
      /kapok_http_request_duration_seconds_count\{route="unmatched",method="GET",status_code="404"\} \d+/,
    );
    assert.ok(!text.includes('secret-id-123') && !text.includes('also-secret'));
    assert.match(text, /kapok_process_resident_memory_bytes/);
  });

  it('passes promtool check metrics', async (t) => {
    const text = (await get('/metrics')).text;
    const out = await promtoolCheck(t, text);
    if (!out) return;
    assert.equal(out.code, 0, out.stderr);
  });
});

/** Sends raw bytes on a fresh socket and returns everything the server wrote back before closing. */
function raw(url: string, payload: string, waitMs = 5000): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, waitMs);
    socket.on('data', (d) => {
      out += d.toString('latin1');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('error', reject);
    socket.write(payload);
  });
}

describe('http: hostile and broken HTTP', () => {
  it('a garbage request line gets 400 JSON and the connection is closed', async () => {
    const out = await raw(base, 'GARBAGE \u0000\u0001 NOT HTTP\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.match(out, /"code":"KAPOK_HTTP_BAD_REQUEST"/);
  });

  it('oversized headers get 431 JSON', async () => {
    const out = await raw(base, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 431 /);
    assert.match(out, /"code":"KAPOK_HTTP_HEADERS_TOO_LARGE"/);
  });

  it('a client that never finishes its request gets 408 JSON after http.requestTimeoutMs', async () => {
    const cfg = testConfig({ http: { requestTimeoutMs: 1000 } });
    const slow = createHttpServer({
      config: cfg,
      logger: createLogger({ level: 'silent' }),
      metrics: createMetrics(),
      tracing,
    });
    await slow.listen({ port: 0, host: '127.0.0.1' });
    try {
      const url = `http://127.0.0.1:${(slow.server.address() as AddressInfo).port}`;
      const started = Date.now();
      const out = await raw(url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 8000); // headers never end
      assert.match(out, /^HTTP\/1\.1 408 /);
      assert.match(out, /"code":"KAPOK_HTTP_TIMEOUT"/);
      assert.ok(Date.now() - started < 7000, 'closed by the server, not by our own wait');
    } finally {
      await slow.close();
    }
  });
});
