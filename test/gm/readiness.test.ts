import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { defaultVerifyWorkers } from '../../src/gm/capability.js';
import { rotateMasterKey } from '../../src/gm/keystore.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

const KEK = '00112233445566778899aabbccddeeff';
const OTHER_KEK = 'ffeeddccbbaa99887766554433221100';

interface Gm {
  state: string;
  detail?: { keys?: unknown; code?: string; error?: string };
}

// gm is not ready when the KGC keys cannot be read: here another process rotates the sign key under
// a different KEK (a misconfigured fleet), so this process cannot open the new active key.
describe('gm: /readyz reports unreadable KGC keys', () => {
  const logs = captureLogs();
  let app: RunningApp;
  let base: string;

  before(async () => {
    const config = testConfig({
      dataDir: tmpDir('kapok-gm-ready-'),
      http: { host: '127.0.0.1', port: 0 },
      gm: { enabled: true, kek: KEK, keyReloadSeconds: 1, verifyWorkers: 0 },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
    base = `http://127.0.0.1:${app.port}`;
  });
  after(() => app.stop('test'));

  const gm = async () => {
    const r = await fetch(`${base}/readyz`);
    const body = (await r.json()) as { components: Array<{ name: string } & Gm> };
    return { status: r.status, gm: body.components.find((c) => c.name === 'gm') };
  };
  /** Polls until `want` (the keyring re-reads every second), at most 10 s. */
  const until = async (want: number) => {
    for (let i = 0; i < 100; i++) {
      const r = await gm();
      if (r.status === want) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`/readyz never answered ${want}`);
  };

  it('ready with readable keys; 503 naming KAPOK_GM_KEK_MISMATCH when they are not; ready once fixed', async () => {
    const ok = await gm();
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.gm?.detail?.keys, { sign: 'sign-1', enc: 'enc-1', token: 'token-1' });

    await rotateMasterKey(app.store, Uint8Array.from(Buffer.from(OTHER_KEK, 'hex')), 'sign');
    const bad = await until(503);
    assert.equal(bad.gm?.state, 'not_ready');
    assert.equal(bad.gm?.detail?.keys, 'unreadable');
    assert.equal(bad.gm?.detail?.code, 'KAPOK_GM_KEK_MISMATCH');
    assert.match(bad.gm?.detail?.error ?? '', /sign-2/);
    assert.equal(
      logs.lines.filter((l) => /cannot be re-read/.test(String(l.msg))).length,
      1,
      'logged once per outage',
    );
    for (const k of [KEK, OTHER_KEK]) assert.ok(!logs.text().includes(k), 'no KEK in the log');

    // The operator removes the stray key and restores the old one as active.
    await app.store.execute("DELETE FROM gm_master_keys WHERE id = 'sign-2'");
    await app.store.execute("UPDATE gm_master_keys SET retired_at = NULL WHERE id = 'sign-1'");
    const back = await until(200);
    assert.equal(back.gm?.state, 'ready');
    assert.ok(logs.lines.some((l) => /readable again/.test(String(l.msg))));
  });
});

describe('gm: verification workers by default', () => {
  it('one per core but the event loop’s, at least one, as /readyz reports', async () => {
    assert.deepEqual([1, 2, 16].map(defaultVerifyWorkers), [1, 1, 15]);
    const config = testConfig({
      dataDir: tmpDir('kapok-gm-workers-'),
      http: { host: '127.0.0.1', port: 0 },
      gm: { enabled: true, kek: KEK },
    });
    const app = await startApp(
      { config, file: null, envOverrides: new Map() },
      { logDestination: captureLogs() },
    );
    try {
      const body = (await (await fetch(`http://127.0.0.1:${app.port}/readyz`)).json()) as {
        components: Array<{ name: string; detail?: { verifyWorkers?: number } }>;
      };
      const gm = body.components.find((c) => c.name === 'gm');
      assert.equal(gm?.detail?.verifyWorkers, Math.max(1, availableParallelism() - 1));
    } finally {
      await app.stop('test');
    }
  });
});
