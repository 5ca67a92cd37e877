import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { kapok, kapokUp } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

async function getJson(port: number, path: string) {
  const res = await request(`http://127.0.0.1:${port}${path}`);
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  return lines[0] as string;
}

describe('kapok up: start and stop', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`starts on embedded defaults, serves probes, and exits 0 on ${signal}`, async () => {
      const dataDir = join(tmpDir(), 'nested', 'data');
      const k = await kapokUp({ KAPOK_DATA_DIR: dataDir });
      const health = await getJson(k.port, '/healthz');
      assert.equal(health.status, 200);
      assert.equal(health.body.region, 'guangzhou');
      const ready = await getJson(k.port, '/readyz');
      assert.equal(ready.status, 200);
      assert.deepEqual(
        (ready.body.components as { name: string; state: string }[])
          .map((c) => `${c.name}=${c.state}`)
          .sort(),
        ['events:memory=ready', 'kv:memory=ready', 'store:sqlite=ready'],
      );
      assert.ok(existsSync(join(dataDir, 'kapok.db')), 'dataDir created and the SQLite store lives in it');
      k.child.kill(signal);
      assert.equal(await k.exited, 0, k.stderr());
      const stopped = k.lines.find((l) => l.msg === 'stopped');
      assert.equal(stopped?.clean, true);
    });
  }
});

describe('kapok up: an upgrade nobody serves', () => {
  it('gets 404 and its connection closed, and SIGTERM still exits within shutdownTimeoutMs', async () => {
    const k = await kapokUp({ KAPOK_DATA_DIR: tmpDir(), KAPOK_SHUTDOWN_TIMEOUT_MS: '3000' });
    const out = await new Promise<string>((resolve, reject) => {
      const s = connect(k.port, '127.0.0.1', () =>
        s.write(
          'GET /ws/nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        ),
      );
      let got = '';
      s.on('data', (d) => {
        got += d;
      });
      s.on('close', () => resolve(got));
      s.on('error', reject);
      s.setTimeout(5000, () => reject(new Error(`not closed within 5 s; got ${JSON.stringify(got)}`)));
    });
    assert.match(out, /^HTTP\/1\.1 404 /);
    assert.match(out, /"code":"KAPOK_HTTP_NOT_FOUND"/);
    const t0 = Date.now();
    k.child.kill('SIGTERM');
    assert.equal(await k.exited, 0, k.stderr());
    assert.ok(Date.now() - t0 < 3000, `exit took ${Date.now() - t0} ms`);
  });
});

describe('kapok up: failed starts say what to change', () => {
  it('a port in use exits 1 naming the port and the fix, never picking another', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await kapok(['up'], {
        KAPOK_HTTP__PORT: String(port),
        KAPOK_HTTP__HOST: '127.0.0.1',
        KAPOK_DATA_DIR: tmpDir(),
      });
      assert.equal(r.code, 1);
      const line = oneLine(r.stderr);
      assert.match(
        line,
        new RegExp(`http\\.port ${port} .*in use.*KAPOK_HTTP__PORT.*\\[KAPOK_START_PORT_IN_USE\\]`),
      );
    } finally {
      blocker.close();
    }
  });

  it('an unwritable dataDir exits 1 naming it', async () => {
    const r = await kapok(['up'], { KAPOK_DATA_DIR: '/proc/kapok-cannot-live-here', KAPOK_HTTP__PORT: '0' });
    assert.equal(r.code, 1);
    assert.match(
      oneLine(r.stderr),
      /dataDir \/proc\/kapok-cannot-live-here cannot be created.*KAPOK_DATA_DIR.*\[KAPOK_START_DATA_DIR\]/,
    );
  });

  it('a configuration error exits 2 with one line', async () => {
    const r = await kapok(['up'], { KAPOK_HTTP__PORT: '70000' });
    assert.equal(r.code, 2);
    assert.match(
      oneLine(r.stderr),
      /http\.port: expected <= 65535, found number 70000 \(from KAPOK_HTTP__PORT\)/,
    );
  });

  it('profile gov refuses to start unless GOVERNMENT_ENV=prod', async () => {
    // Profile gov requires the audit trail (docs/audit.md).
    const audit = {
      KAPOK_AUDIT__ENABLED: 'true',
      KAPOK_AUDIT__KEK: '00112233445566778899aabbccddeeff',
      KAPOK_AUDIT__ADMIN_TOKEN: 'audit-admin-token-0001',
    };
    const r = await kapok(['up'], {
      KAPOK_PROFILE: 'gov',
      KAPOK_HTTP__PORT: '0',
      KAPOK_DATA_DIR: tmpDir(),
      ...audit,
    });
    assert.equal(r.code, 2);
    assert.match(oneLine(r.stderr), /GOVERNMENT_ENV=prod.*\[KAPOK_CONFIG_PROFILE\]/);
    const k = await kapokUp({
      KAPOK_PROFILE: 'gov',
      GOVERNMENT_ENV: 'prod',
      KAPOK_DATA_DIR: tmpDir(),
      ...audit,
    });
    assert.equal((await getJson(k.port, '/healthz')).status, 200);
    k.child.kill('SIGTERM');
    assert.equal(await k.exited, 0);
  });

  it('an unreachable PostgreSQL exits 1 without printing its password', async () => {
    const r = await kapok(['up'], {
      KAPOK_STORE__DRIVER: 'postgres',
      KAPOK_STORE__URL: 'postgres://kapok:s3cr3t-pw@127.0.0.1:1/kapok',
      KAPOK_HTTP__PORT: '0',
      KAPOK_DATA_DIR: tmpDir(),
    });
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /KAPOK_STORE_UNAVAILABLE/);
    assert.ok(!(r.stderr + r.stdout).includes('s3cr3t-pw'));
  });
});
