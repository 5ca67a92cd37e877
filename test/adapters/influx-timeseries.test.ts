import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { toLineProtocol } from '../../src/adapters/influx/line-protocol.js';
import {
  createInfluxTimeSeries,
  type InfluxTimeSeriesOptions,
} from '../../src/adapters/influx/timeseries.js';
import { isKapokError } from '../../src/core/errors.js';
import type { Point } from '../../src/ports/timeseries.js';

/**
 * A FAKE InfluxDB HTTP write endpoint: records each request and answers `status` with `body`.
 *
 * Why a fake for version 2: no InfluxDB with `/api/v2/write` can be installed here. Debian ships
 * influxdb 1.6.7 (test/helpers/influxd.ts runs it for the v1 tests), and the v2 compatibility
 * endpoint arrived in InfluxDB 1.8.0; no npm package ships an `influxd` 2 binary.
 * What it checks: the request Kapok sends (URL `<base>/api/v2/write` with `org`, `bucket` and
 * `precision=ms`, the `Authorization: Token …` header, gzip, the line-protocol body, `/health` as
 * the ping) and how Kapok treats the status it is given (204, 400, 401, 429, 5xx).
 * What it cannot: that a real InfluxDB 2 accepts that request (parameter names and values, the
 * token scheme, gzip, field types), and the real bodies of its errors (a v2 400 is JSON
 * `{"code":"invalid",…}`, so the count of refused points is not read from a real answer).
 */
async function fakeInflux() {
  const got: { url: string; headers: IncomingMessage['headers']; body: string }[] = [];
  const state = { status: 204, body: '', got };
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    got.push({
      url: req.url ?? '',
      headers: req.headers,
      body: req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString(),
    });
    res.writeHead(state.status, { 'content-type': 'application/json' }).end(state.body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    state,
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise((r) => server.close(r)),
  };
}

const pt = (measurement: string, extra: Partial<Point> = {}): Point => ({
  measurement,
  device: 'd1',
  tags: {},
  fields: { v: 1 },
  ts: 1000,
  ...extra,
});

describe('influx time-series adapter (against a fake write endpoint)', () => {
  let fake: Awaited<ReturnType<typeof fakeInflux>>;
  before(async () => {
    fake = await fakeInflux();
  });
  after(() => fake.close());

  it('v2: gzip line protocol to <base>/api/v2/write with org, bucket, ms precision and the token', async () => {
    fake.state.status = 204;
    const s = createInfluxTimeSeries({
      name: 'influx-0',
      url: `${fake.url}/base/`,
      version: 2,
      db: 'tele',
      org: 'gz',
      token: 'tok-123',
    });
    try {
      await s.write([pt('env', { tags: { site: 'g z' }, fields: { v: 1.5, n: 3, ok: true, s: 'a "b"' } })]);
      const last = fake.state.got.at(-1);
      assert.equal(last?.url, '/base/api/v2/write?org=gz&bucket=tele&precision=ms');
      assert.equal(last?.headers.authorization, 'Token tok-123');
      assert.equal(last?.headers['content-encoding'], 'gzip');
      assert.equal(last?.body, 'env,device=d1,site=g\\ z v=1.5,n=3,ok=true,s="a \\"b\\"" 1000\n');
      await s.ping();
      assert.equal(fake.state.got.at(-1)?.url, '/health');
    } finally {
      await s.close();
    }
  });

  it('v1: POST /write?db= with the URL credentials as u and p; /ping', async () => {
    fake.state.status = 204;
    const s = createInfluxTimeSeries({
      name: 'influx-1',
      url: fake.url.replace('http://', 'http://us%40r:p%3Ass@'),
      version: 1,
      db: 'tele',
    });
    try {
      await s.write([pt('env')]);
      assert.equal(fake.state.got.at(-1)?.url, '/write?db=tele&precision=ms&u=us%40r&p=p%3Ass');
      assert.equal(fake.state.got.at(-1)?.headers.authorization, undefined);
      await s.ping();
      assert.equal(fake.state.got.at(-1)?.url, '/ping');
    } finally {
      await s.close();
    }
  });

  it('5xx, 429 and 401 reject with KAPOK_EDGE_SINK (the caller retries); a failed ping too', async () => {
    const s = createInfluxTimeSeries({ name: 'influx-2', url: fake.url, version: 1, db: 'tele' });
    try {
      for (const status of [503, 429, 401]) {
        fake.state.status = status;
        fake.state.body = '{"error":"fake says no"}';
        await assert.rejects(
          s.write([pt('env')]),
          (err) =>
            isKapokError(err, 'KAPOK_EDGE_SINK') && err.message.includes(`influx-2 (influx): HTTP ${status}`),
        );
      }
      await assert.rejects(s.ping(), (err) => isKapokError(err, 'KAPOK_EDGE_SINK'));
    } finally {
      fake.state.body = '';
      await s.close();
    }
  });

  it('400 resolves as rejected, counting what InfluxDB says it dropped', async () => {
    const s = createInfluxTimeSeries({ name: 'influx-3', url: fake.url, version: 1, db: 'tele' });
    const three = [pt('a'), pt('b'), pt('c')];
    try {
      fake.state.status = 400;
      fake.state.body = '{"error":"partial write: field type conflict: ... dropped=2"}';
      assert.deepEqual(await s.write(three), { rejected: 2, reason: fake.state.body });
      fake.state.body = `{"error":"unable to parse 'x': missing fields\\nunable to parse 'y': bad timestamp"}`;
      assert.equal((await s.write(three))?.rejected, 2);
      fake.state.body = '{"error":"fake says no"}';
      assert.equal((await s.write(three))?.rejected, 3, 'an unexplained 400: all of them');
    } finally {
      fake.state.status = 204;
      fake.state.body = '';
      await s.close();
    }
  });

  it('leaves out (and counts) points whose names line protocol cannot carry; sends nothing when none is left', async () => {
    fake.state.status = 204;
    const s = createInfluxTimeSeries({ name: 'influx-4', url: fake.url, version: 1, db: 'tele' });
    try {
      const before = fake.state.got.length;
      const res = await s.write([
        pt('ok'),
        pt('m\nforged,device=victim v=666'),
        pt('m', { device: 'ends\\' }),
        pt('m', { tags: { 'k\\,': 'v' } }),
        pt('m', { fields: { 'f\\ x': 1 } }),
      ]);
      assert.equal(res?.rejected, 4);
      assert.equal(fake.state.got.at(-1)?.body, 'ok,device=d1 v=1 1000\n');
      assert.deepEqual(await s.write([pt('x\ny')]), { rejected: 1, reason: res?.reason });
      assert.equal(fake.state.got.length, before + 1, 'nothing sent for a batch with no point left');
    } finally {
      await s.close();
    }
  });
});

describe('influx line protocol', () => {
  it('escapes what line protocol escapes, keeps other backslashes, drops empty and device tags', () => {
    assert.equal(
      toLineProtocol([
        {
          measurement: 'm x,y=z\\w',
          device: 'd 1',
          tags: { b: 'x=y,z', a: '', device: 'other', 'k\\j': 'v"w' },
          fields: { 'f=1': 'q"\\', g: -2.5, h: false },
          ts: -5,
        },
      ]),
      'm\\ x\\,y=z\\w,device=d\\ 1,b=x\\=y\\,z,k\\j=v"w f\\=1="q\\"\\\\",g=-2.5,h=false -5\n',
    );
  });
});

describe('influx time-series options', () => {
  it('rejects bad options with KAPOK_CONFIG_INVALID naming the option', () => {
    const ok = { name: 'i', url: 'http://127.0.0.1:8086', version: 1, db: 'tele' };
    const cases: Array<[unknown, string]> = [
      [null, 'options'],
      [{ ...ok, name: '' }, 'name'],
      [{ ...ok, url: 'ftp://x' }, 'url'],
      [{ ...ok, url: 'not a url' }, 'url'],
      [{ ...ok, version: 3 }, 'version'],
      [{ ...ok, db: null }, 'db'],
      [{ ...ok, version: 2, org: null }, 'org'],
      [{ ...ok, token: '' }, 'token'],
    ];
    for (const [opts, option] of cases)
      assert.throws(
        () => createInfluxTimeSeries(opts as InfluxTimeSeriesOptions),
        (err) => isKapokError(err, 'KAPOK_CONFIG_INVALID') && err.message.includes(`option ${option} `),
        option,
      );
  });
});
