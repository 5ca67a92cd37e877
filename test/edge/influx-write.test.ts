import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { InfluxDB, Point } from '@influxdata/influxdb-client';
import { tmpDir } from '../helpers/tmp.js';
import { type Edge, startEdge, until } from './setup.js';

/**
 * The InfluxDB write API with clients no one here wrote: @influxdata/influxdb-client (the official
 * JS client, which gzips bodies over 1000 bytes) on /api/v2/write, and curl --data-binary @file
 * (the v1 way, Telegraf's influxdb output sends the same) on /write; then read back through
 * /api/edge/query. Refusals answer in InfluxDB's shapes and keep nothing of the request.
 */

const USER = 'telegraf';
const PASS = 'telegraf-secret-1';
const ADMIN = 'edge-admin-token-0123456789';
const MAX_BODY = 64 * 1024;
const MAX_LINE = 2048;

function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', ...args], { timeout: 10_000 }, (err, out) => {
      if (err) return reject(err);
      const i = out.lastIndexOf('\n');
      resolve({ status: Number(out.slice(i + 1)), body: out.slice(0, i) });
    }),
  );
}

describe('edge InfluxDB write API', () => {
  let e: Edge;
  const post = async (
    path: string,
    body: string | Buffer,
    headers: Record<string, string> = {},
    // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answers
  ): Promise<{ status: number; body: any; headers: Headers }> => {
    const res = await fetch(`${e.base}${path}`, { method: 'POST', body, headers });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };
  const auth = { authorization: `Token ${USER}:${PASS}` };
  // The query API with the edge admin token (a viewer act; the admin token itself cannot write).
  const points = async (measurement: string, field: string, device: string) => {
    const res = await fetch(
      `${e.base}/api/edge/query?measurement=${measurement}&field=${field}&device=${device}&from=0`,
      {
        headers: { authorization: `Bearer ${ADMIN}` },
      },
    );
    const body = (await res.json()) as { points: Array<{ ts: number; value: number }> };
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.points;
  };
  /** Writes a marker and waits until it is stored: whatever was accepted before it is stored too. */
  const settle = async (tag: string) => {
    assert.equal(
      (await post('/api/v2/write?org=o&bucket=b&precision=ms', `mark,device=${tag} v=1 1000`, auth)).status,
      204,
    );
    await until(async () => (await points('mark', 'v', tag)).length === 1, 5000, `marker ${tag}`);
  };

  before(async () => {
    e = await startEdge({
      adminToken: ADMIN,
      auth: {
        anonymous: false,
        users: [
          { username: USER, password: PASS },
          { username: 'reader', password: 'reader-secret-1' },
        ],
      },
      acl: { grants: [{ who: `user:${USER}`, publish: ['telemetry/#'] }] },
      write: { maxBodyBytes: MAX_BODY, maxLineBytes: MAX_LINE },
    });
  });
  after(() => e.stop());

  it('@influxdata/influxdb-client writes to /api/v2/write (gzip batches) and the points read back', async () => {
    const client = new InfluxDB({ url: e.base, token: `${USER}:${PASS}` });
    const w = client.getWriteApi('kapok', 'plant', 'ms', { batchSize: 500, maxRetries: 0, gzipThreshold: 1 });
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < 200; i++)
      w.writePoint(
        new Point('cpu')
          .tag('device', 'host-1')
          .tag('core', String(i % 2))
          .floatField('usage', i)
          .timestamp(new Date(t0 + i)),
      );
    await w.close();
    const got = await until(async () => {
      const p = await points('cpu', 'usage', 'host-1');
      return p.length === 200 ? p : null;
    });
    assert.deepEqual(
      got.slice(0, 3).map((p) => p.value),
      [0, 1, 2],
    );
    assert.equal(got[0]?.ts, t0);
  });

  it('curl --data-binary @file to /write (v1, u/p, precision=s) is stored; no device tag: the user', async () => {
    const file = join(tmpDir(), 'batch.lp');
    writeFileSync(file, '# from a file\nenv,site=a temp=21.5 1700000000\nenv,site=a temp=22.5 1700000001\n');
    const r = await curl([
      '--data-binary',
      `@${file}`,
      `${e.base}/write?db=telegraf&precision=s&u=${USER}&p=${PASS}`,
    ]);
    assert.equal(r.status, 204, r.body);
    const got = await until(async () => {
      const p = await points('env', 'temp', USER);
      return p.length === 2 ? p : null;
    });
    assert.deepEqual(
      got.map((p) => [p.ts, p.value]),
      [
        [1_700_000_000_000, 21.5],
        [1_700_000_001_000, 22.5],
      ],
    );
  });

  it('a malformed line: 400 naming the line (v2 and v1 shapes), nothing of the batch stored', async () => {
    const body = 'bad1,device=d temp=1 1\nbad1,device=d temp= 2\nbad1,device=d temp=3 3\n';
    const v2 = await post('/api/v2/write?org=o&bucket=b', body, auth);
    assert.equal(v2.status, 400);
    assert.equal(v2.body.code, 'invalid');
    assert.equal(v2.body.line, 2);
    assert.equal(v2.body.kapokCode, 'KAPOK_EDGE_WRITE_INVALID');
    assert.match(v2.body.message, /^unable to parse 'bad1,device=d temp= 2': .*\(line 2\)$/);
    assert.equal(v2.headers.get('x-kapok-error'), 'KAPOK_EDGE_WRITE_INVALID');
    const v1 = await post('/write?db=x', body, auth);
    assert.equal(v1.status, 400);
    assert.match(v1.body.error, /^unable to parse .*line 2/);
    await settle('m1');
    assert.deepEqual(await points('bad1', 'temp', 'd'), []);
  });

  it('a body cut halfway (mid-line, mid-gzip, or the connection dropped) stores nothing', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => `cut,device=d v=${i} ${i + 1}`).join('\n');
    const half = lines.slice(0, Math.floor(lines.length / 2) - 3);
    const text = await post('/api/v2/write?org=o&bucket=b', half, auth);
    assert.equal(text.status, 400);
    assert.equal(typeof text.body.line, 'number');
    const gz = gzipSync(lines);
    const gzCut = await post('/api/v2/write?org=o&bucket=b', gz.subarray(0, gz.length >> 1), {
      ...auth,
      'content-encoding': 'gzip',
    });
    assert.equal(gzCut.status, 400);
    assert.match(gzCut.body.message, /gzip body cannot be inflated/);
    // Content-Length promises the whole body; the client sends half and hangs up.
    await new Promise<void>((resolve, reject) => {
      const s = connect(Number(new URL(e.base).port), '127.0.0.1', () => {
        s.write(
          `POST /api/v2/write?org=o&bucket=b HTTP/1.1\r\nHost: x\r\nAuthorization: Token ${USER}:${PASS}\r\nContent-Length: ${lines.length}\r\n\r\n${lines.slice(0, lines.length >> 1)}`,
        );
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 100);
      });
      s.on('error', reject);
    });
    await settle('m2');
    assert.deepEqual(await points('cut', 'v', 'd'), []);
  });

  it('oversize: body over maxBodyBytes, a gzip bomb, a line over maxLineBytes: 413', async () => {
    const big = await post('/api/v2/write?org=o&bucket=b', 'x'.repeat(MAX_BODY + 1), auth);
    assert.equal(big.status, 413);
    assert.equal(big.body.code, 'request too large');
    assert.equal(big.body.kapokCode, 'KAPOK_HTTP_BODY_TOO_LARGE');
    const bomb = gzipSync(Buffer.alloc(MAX_BODY * 16, 0x61));
    assert.ok(bomb.length < MAX_BODY);
    const b = await post('/api/v2/write?org=o&bucket=b', bomb, { ...auth, 'content-encoding': 'gzip' });
    assert.equal(b.status, 413);
    assert.equal(b.body.kapokCode, 'KAPOK_EDGE_WRITE_TOO_LARGE');
    const long = await post(
      '/write?db=x',
      `ok,device=d v=1\nlong,device=d s="${'y'.repeat(MAX_LINE)}"\n`,
      auth,
    );
    assert.equal(long.status, 413);
    assert.match(long.body.error, /line 2 is \d+ bytes, over edge.write.maxLineBytes/);
    const enc = await post('/api/v2/write?org=o&bucket=b', 'a v=1', { ...auth, 'content-encoding': 'br' });
    assert.equal(enc.status, 415);
    assert.equal(enc.body.kapokCode, 'KAPOK_HTTP_UNSUPPORTED_MEDIA_TYPE');
  });

  it('wrong or missing credentials: 401 in InfluxDB shape; the admin token does not write', async () => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: `Token ${USER}:wrong-password` },
      { authorization: `Token ${USER}:${PASS}x` },
      { authorization: `Token nobody:${PASS}` },
      { authorization: `Bearer ${ADMIN}` },
      { authorization: `Token ${ADMIN}` },
      { authorization: 'Digest abc' },
      { authorization: `Basic ${Buffer.from(`${USER}:nope`).toString('base64')}` },
    ];
    for (const h of cases) {
      const r = await post('/api/v2/write?org=o&bucket=b', 'deny,device=d v=1', h);
      assert.equal(r.status, 401, JSON.stringify(h));
      assert.deepEqual([r.body.code, r.body.kapokCode], ['unauthorized', 'KAPOK_EDGE_WRITE_UNAUTHORIZED']);
      assert.ok(!JSON.stringify(r.body).includes(PASS), 'no secret echoed');
    }
    // Credentials are checked before the body is read: an oversize body from a stranger is a 401.
    const stranger = await post('/api/v2/write?org=o&bucket=b', 'x'.repeat(MAX_BODY * 2), {});
    assert.equal(stranger.status, 401);
    const v1 = await post(`/write?db=x&u=${USER}&p=nope`, 'deny,device=d v=1');
    assert.equal(v1.status, 401);
    assert.equal(v1.body.kapokCode, 'KAPOK_EDGE_WRITE_UNAUTHORIZED');
    const basic = await post('/write?db=x', 'basic,device=d v=1', {
      authorization: `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`,
    });
    assert.equal(basic.status, 204);
    await settle('m3');
    assert.deepEqual(await points('deny', 'v', 'd'), []);
  });

  it('least privilege: a user without a grant gets 403 naming the line; names cannot forge topic levels', async () => {
    const r = await post('/api/v2/write?org=o&bucket=b', '# c\nacl,device=d v=1', {
      authorization: 'Token reader:reader-secret-1',
    });
    assert.equal(r.status, 403);
    assert.deepEqual(
      [r.body.code, r.body.line, r.body.kapokCode],
      ['forbidden', 2, 'KAPOK_EDGE_WRITE_FORBIDDEN'],
    );
    assert.match(r.body.message, /user reader may not write measurement acl of device d/);
    const slash = await post('/api/v2/write?org=o&bucket=b', 'ok,device=d v=1\nx,device=a/b v=1', auth);
    assert.equal(slash.status, 400);
    assert.equal(slash.body.line, 2);
  });

  it('bad parameters: no db or bucket, an unknown precision', async () => {
    const a = await post('/api/v2/write?org=o', 'p,device=d v=1', auth);
    assert.equal(a.status, 400);
    assert.match(a.body.message, /bucket is required/);
    const b = await post('/write', 'p,device=d v=1', auth);
    assert.match(b.body.error, /database is required/);
    const c = await post('/api/v2/write?bucket=b&precision=h', 'p,device=d v=1', auth);
    assert.equal(c.status, 400);
    assert.match(c.body.message, /precision=h is not supported/);
    const d = await post('/api/v2/write?bucket=b&bucket=c', 'p,device=d v=1', auth);
    assert.equal(d.status, 400);
  });
});

describe('edge InfluxDB write API: spool limits', () => {
  let e: Edge;
  before(async () => {
    e = await startEdge({ spool: { maxBytes: 1024 } });
  });
  after(() => e.stop());

  it('a batch the spool cannot take is 503 with Retry-After (clients retry), nothing kept', async () => {
    const body = Array.from({ length: 60 }, (_, i) => `full,device=d v=${i}`).join('\n');
    const res = await fetch(`${e.base}/api/v2/write?org=o&bucket=b`, { method: 'POST', body });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    const j = (await res.json()) as { code: string; kapokCode: string };
    assert.deepEqual([j.code, j.kapokCode], ['unavailable', 'KAPOK_EDGE_SPOOL_FULL']);
    const ok = await fetch(`${e.base}/api/v2/write?org=o&bucket=b`, {
      method: 'POST',
      body: 'small,device=d v=1',
    });
    assert.equal(ok.status, 204, 'anonymous with a grant writes');
  });
});

describe('edge InfluxDB write API: text encodings', () => {
  let e: Edge;
  before(async () => {
    e = await startEdge({});
  });
  after(() => e.stop());

  it('UTF-8 names and a BOM are taken; invalid UTF-8 is a 400 naming it', async () => {
    const w = (body: Buffer) =>
      fetch(`${e.base}/api/v2/write?org=o&bucket=b&precision=ms`, { method: 'POST', body });
    const text = Buffer.from('\ufefftemp,device=泵-1 °C=21.5 1000\n');
    assert.equal((await w(text)).status, 204);
    const got = await until(async () => {
      const r = await e.get(
        `/api/edge/query?measurement=temp&field=${encodeURIComponent('°C')}&device=${encodeURIComponent('泵-1')}&from=0`,
      );
      return r.body.points?.length === 1 ? r.body.points : null;
    });
    assert.deepEqual(got, [{ ts: 1000, value: 21.5 }]);
    const bad = await w(Buffer.from([0x6d, 0x20, 0x76, 0x3d, 0x31, 0xff]));
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { message: string }).message, /not valid UTF-8/);
  });
});
