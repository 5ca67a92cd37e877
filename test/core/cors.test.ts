import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { configSchema } from '../../src/config.js';
import { type Gw, startGateway } from '../gateway/setup.js';
import { testConfig } from '../helpers/config.js';

/**
 * CORS on /v1 and /v2 as a browser speaks it: a preflight OPTIONS with Origin and
 * Access-Control-Request-* (no credentials: browsers never send them on a preflight), then the real
 * request with Origin. Node's fetch sends the same headers a browser would but does not enforce the
 * answer, so the tests read the Access-Control-* headers the browser would check.
 */

const APP = 'http://app.example:3000';

function preflight(base: string, path: string, origin: string) {
  return fetch(`${base}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
  });
}

describe('CORS on (http.cors.origins listed, credentials)', () => {
  let gw: Gw;
  let key: string;
  before(async () => {
    gw = await startGateway(
      {},
      { http: { host: '127.0.0.1', port: 0, cors: { origins: [APP], credentials: true } } },
    );
    key = (await gw.createKey()).key;
  });
  after(() => gw.stop());

  it('answers a preflight to /v1 with 204 before gateway auth, reflecting the listed origin', async () => {
    const res = await preflight(gw.base, '/v1/chat/completions', APP);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /authorization/);
    assert.equal(res.headers.get('access-control-max-age'), '600');
    assert.match(res.headers.get('vary') ?? '', /Origin/);
  });

  it('answers a preflight to /v2 too', async () => {
    const res = await preflight(gw.base, '/v2/models/m/infer', APP);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
  });

  it('gives an unlisted origin no Access-Control-Allow-Origin (the browser refuses)', async () => {
    const res = await preflight(gw.base, '/v1/models', 'http://evil.example');
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });

  it('an OPTIONS without Access-Control-Request-Method gets the same answer, never reaching auth', async () => {
    const res = await fetch(`${gw.base}/v1/models`, { method: 'OPTIONS', headers: { origin: APP } });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
  });

  it('marks the real request, success and error alike, so the browser can read both', async () => {
    const ok = await fetch(`${gw.base}/v1/models`, {
      headers: { origin: APP, authorization: `Bearer ${key}` },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), APP);
    assert.match(ok.headers.get('access-control-expose-headers') ?? '', /x-request-id/);
    const denied = await fetch(`${gw.base}/v1/models`, { headers: { origin: APP } });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('access-control-allow-origin'), APP);
    const wrong = await fetch(`${gw.base}/v1/models`, {
      headers: { origin: APP, authorization: 'Bearer sk-wrong' },
    });
    assert.equal(wrong.status, 401);
  });

  it('leaves admin APIs same-origin: no CORS headers, OPTIONS is a 404', async () => {
    const res = await preflight(gw.base, '/api/gateway/keys', APP);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    const get = await fetch(`${gw.base}/healthz`, { headers: { origin: APP } });
    assert.equal(get.headers.get('access-control-allow-origin'), null);
  });
});

describe('CORS off by default', () => {
  let gw: Gw;
  before(async () => {
    gw = await startGateway({});
  });
  after(() => gw.stop());

  it('answers no preflight and adds no header', async () => {
    const res = await preflight(gw.base, '/v1/chat/completions', APP);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });
});

describe('http.cors validation', () => {
  it('refuses credentials with origin *', () => {
    const r = configSchema.safeParse({ http: { cors: { origins: ['*'], credentials: true } } });
    assert.equal(r.success, false);
    assert.match(JSON.stringify(r.error?.issues), /http.*cors.*credentials|list the exact origins/);
  });
  it('refuses an origin with a path, and accepts * without credentials', () => {
    assert.equal(
      configSchema.safeParse({ http: { cors: { origins: ['https://a.example/app'] } } }).success,
      false,
    );
    assert.equal(configSchema.safeParse({ http: { cors: { origins: ['a.example'] } } }).success, false);
    const c = testConfig({ http: { cors: { origins: ['*', 'https://[::1]:8443'] } } });
    assert.deepEqual(c.http.cors.origins, ['*', 'https://[::1]:8443']);
  });
});
