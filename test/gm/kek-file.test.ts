import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { isKapokError } from '../../src/core/errors.js';
import { toHex } from '../../src/crypto/bytes.js';
import { readKek } from '../../src/gm/keystore.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

/**
 * gm.kekFile (docs/configuration.md, docs/errors.md KAPOK_GM_KEK_FILE): the KEK read from a file of
 * 32 hex digits when gm.kek is null. A bad file stops the start with a message naming the file and
 * what it must hold, never its contents. (No file mode is promised: nothing checks permissions.)
 */

const KEK = '8899aabbccddeeff0011223344556677';
const ADMIN = 'admin-token-for-tests-0001';

function kekFileError(file: string, re: RegExp, secret?: string) {
  return (err: unknown) => {
    assert.ok(isKapokError(err, 'KAPOK_GM_KEK_FILE'), String(err));
    assert.equal(err.code, 'KAPOK_GM_KEK_FILE');
    assert.ok(err.message.includes(file), `names the file: ${err.message}`);
    assert.match(err.message, re);
    if (secret) assert.ok(!err.message.includes(secret), `no key bytes in: ${err.message}`);
    return true;
  };
}

describe('gm.kekFile: reading the KEK', () => {
  it('a file of 32 hex digits (with the newline an editor or echo leaves) gives the KEK', () => {
    const file = tmpFile('kek', `${KEK}\n`);
    assert.equal(toHex(readKek({ kek: null, kekFile: file })), KEK);
  });

  it('gm.kek wins over gm.kekFile when both are set', () => {
    const file = tmpFile('kek', KEK);
    const other = 'ffeeddccbbaa99887766554433221100';
    assert.equal(toHex(readKek({ kek: other, kekFile: file })), other);
  });

  it('a missing file is KAPOK_GM_KEK_FILE: check the path', () => {
    const file = join(tmpDir(), 'no-such-kek');
    assert.throws(
      () => readKek({ kek: null, kekFile: file }),
      kekFileError(file, /cannot be read: check the path/),
    );
  });

  it('an unreadable path (a directory) is KAPOK_GM_KEK_FILE', () => {
    const dir = tmpDir();
    assert.throws(() => readKek({ kek: null, kekFile: dir }), kekFileError(dir, /cannot be read/));
  });

  it('the wrong number of digits, or not hex, is KAPOK_GM_KEK_FILE without the file contents', () => {
    const short = KEK.slice(0, 30);
    const a = tmpFile('kek', short);
    assert.throws(
      () => readKek({ kek: null, kekFile: a }),
      kekFileError(a, /must hold exactly 32 hex digits/, short),
    );
    const long = `${KEK}00`;
    const b = tmpFile('kek', long);
    assert.throws(() => readKek({ kek: null, kekFile: b }), kekFileError(b, /exactly 32 hex digits/, long));
    const notHex = `${KEK.slice(0, 31)}g`;
    const c = tmpFile('kek', notHex);
    assert.throws(() => readKek({ kek: null, kekFile: c }), kekFileError(c, /exactly 32 hex digits/, notHex));
    const empty = tmpFile('kek', '');
    assert.throws(() => readKek({ kek: null, kekFile: empty }), kekFileError(empty, /exactly 32 hex digits/));
  });
});

/** Starts Kapok from a YAML file plus KAPOK_* environment variables, as the CLI loads them. */
function start(dataDir: string, env: Record<string, string>, logs = captureLogs()): Promise<RunningApp> {
  const yaml = [
    `dataDir: ${dataDir}`,
    'http: { host: 127.0.0.1, port: 0 }',
    'log: { level: info }',
    `gm: { enabled: true, adminToken: ${ADMIN}, verifyWorkers: 0 }`,
    ...['gateway', 'inference', 'edge', 'v2x'].map((c) => `${c}: { enabled: false }`),
  ].join('\n');
  const loaded = loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env, cwd: tmpDir() });
  return startApp(loaded, { logDestination: logs });
}

async function masterKeys(app: RunningApp): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${app.port}/api/gm/master`);
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

describe('gm.kekFile: at start', () => {
  it('keys sealed under gm.kek (KAPOK_GM__KEK) open with the same KEK from gm.kekFile (KAPOK_GM__KEK_FILE)', async () => {
    const dataDir = tmpDir('kapok-gm-kekfile-');
    const first = await start(dataDir, { KAPOK_GM__KEK: KEK });
    const sealed = await masterKeys(first);
    await first.stop();
    // The public keys served are computed from the decrypted private keys: equal means decrypted.
    const second = await start(dataDir, { KAPOK_GM__KEK_FILE: tmpFile('kek', `${KEK}\n`) });
    try {
      assert.deepEqual(await masterKeys(second), sealed);
    } finally {
      await second.stop();
    }
  });

  it('another KEK in the file is refused (KAPOK_GM_KEK_MISMATCH): the file is what is used', async () => {
    const dataDir = tmpDir('kapok-gm-kekfile-');
    await (await start(dataDir, { KAPOK_GM__KEK: KEK })).stop();
    const wrong = tmpFile('kek', 'ffeeddccbbaa99887766554433221100');
    await assert.rejects(start(dataDir, { KAPOK_GM__KEK_FILE: wrong }), (err: unknown) => {
      assert.ok(isKapokError(err, 'KAPOK_GM_KEK_MISMATCH'), String(err));
      assert.match(err.message, /gm\.kekFile/, 'the message points at the file, not only gm.kek');
      return true;
    });
  });

  it('a bad kekFile stops the start with KAPOK_GM_KEK_FILE; no log line carries the key digits', async () => {
    const logs = captureLogs();
    const short = KEK.slice(0, 24);
    const file = tmpFile('kek', short);
    await assert.rejects(
      start(tmpDir('kapok-gm-kekfile-'), { KAPOK_GM__KEK_FILE: file }, logs),
      kekFileError(file, /must hold exactly 32 hex digits/, short),
    );
    assert.ok(!JSON.stringify(logs.lines).includes(short), 'the file contents reach no log line');
  });
});
