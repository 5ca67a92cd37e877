import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { kapok, kapokUp } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { tmpDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;

describe('kapok device: register → simulate against kapok up → revoke', () => {
  it('runs the identity chain from the command line', async () => {
    const dir = tmpDir('kapok-device-cli-');
    const mqttPort = await freePort();
    const env = {
      KAPOK_EDGE__MQTT__PORT: String(mqttPort),
      KAPOK_DATA_DIR: dir,
      KAPOK_GM__KEK: '0f0e0d0c0b0a09080706050403020100',
      KAPOK_GM__KEY_WRAP: 'pbkdf2',
      KAPOK_GM__FACTORY_SECRET: 'factory-line-7-secret',
      KAPOK_GM__PBKDF2_ITERATIONS: '1000',
      KAPOK_GM__ADMIN_TOKEN: 'admin-token-0123456789',
    };
    const reg = await kapok(['device', 'register', 'PLC-0007', '--group', 'line7', '--json'], env);
    assert.equal(reg.code, 0, reg.stderr);
    const registration = JSON.parse(reg.stdout);
    assert.equal(registration.group, 'line7');
    assert.equal(registration.signKey.scheme, 'pbkdf2-sm3+sm4-gcm');
    const regFile = join(dir, 'reg.json');
    writeFileSync(regFile, reg.stdout);
    const dup = await kapok(['device', 'register', 'PLC-0007'], env);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /\[KAPOK_GM_DEVICE_EXISTS\]$/m);

    const up = await kapokUp({ ...env, KAPOK_GM__ENABLED: 'true', KAPOK_EDGE__ENABLED: 'true' });
    try {
      const url = `http://127.0.0.1:${up.port}`;
      const sim = await kapok(['device', 'simulate', 'PLC-0007', '-r', regFile, '-u', url, '--json'], env);
      assert.equal(sim.code, 0, sim.stderr);
      assert.equal(JSON.parse(sim.stdout).accepted, true);

      // In words it prints the token and the commands that publish with it (issue 14): the
      // mosquitto_pub line names this broker, the serial and the token; the Node line, run as
      // printed, connects with the token as password and its point reaches the store.
      const text = await kapok(['device', 'simulate', 'PLC-0007', '-r', regFile, '-u', url], env);
      assert.equal(text.code, 0, text.stderr);
      const token = /^token (\S+)$/m.exec(text.stdout)?.[1];
      assert.ok(token && token.split('.').length === 3, `a JWT on a "token" line:\n${text.stdout}`);
      assert.ok(
        text.stdout.includes(
          `mosquitto_pub -h 127.0.0.1 -p ${mqttPort} -q 1 -u 'PLC-0007' -P '${token}' -t 'telemetry/PLC-0007/env'`,
        ),
        text.stdout,
      );
      const nodeLine = /^ {2}(node -e .+)$/m.exec(text.stdout)?.[1];
      assert.ok(nodeLine, text.stdout);
      const pub = spawnSync('bash', ['-c', nodeLine], { cwd: root, encoding: 'utf8', timeout: 20_000 });
      assert.equal(pub.status, 0, `the printed Node line failed: ${pub.stderr}`);
      let devices = '';
      for (let i = 0; i < 50 && !devices.includes('PLC-0007'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        devices = await (await fetch(`${url}/api/edge/devices`)).text();
      }
      assert.match(devices, /"PLC-0007"/, 'the point published with the token was stored');
      // Rotate the sign key while kapok up runs: the old device key works in the overlap, a
      // reissued one (from sign-2, which the server has not loaded yet) works too.
      const rot = await kapok(['device', 'rotate-key', 'sign'], env);
      assert.equal(rot.stdout.trim(), 'rotated sign: new key sign-2', rot.stderr);
      assert.equal((await kapok(['device', 'simulate', 'PLC-0007', '-r', regFile, '-u', url], env)).code, 0);
      const re = await kapok(['device', 'reissue', 'PLC-0007', '--json'], env);
      assert.equal(JSON.parse(re.stdout).signKeyId, 'sign-2', re.stderr);
      const regFile2 = join(dir, 'reg2.json');
      writeFileSync(regFile2, re.stdout);
      const sim2 = await kapok(['device', 'simulate', 'PLC-0007', '-r', regFile2, '-u', url], env);
      assert.equal(sim2.code, 0, sim2.stderr);
      const rev = await kapok(['device', 'revoke', 'PLC-0007'], env);
      assert.equal(rev.stdout.trim(), 'revoked PLC-0007');
      // Told it is revoked once its signature verifies (current key); a stale key learns nothing.
      const after = await kapok(['device', 'simulate', 'PLC-0007', '-r', regFile2, '-u', url], env);
      assert.equal(after.code, 1);
      assert.match(after.stderr, /\[KAPOK_GM_DEVICE_REVOKED\]$/m);
      const stale = await kapok(['device', 'simulate', 'PLC-0007', '-r', regFile, '-u', url], env);
      assert.equal(stale.code, 1);
      assert.match(stale.stderr, /\[KAPOK_GM_AUTH_FAILED\]$/m);
    } finally {
      up.child.kill('SIGTERM');
      assert.equal(await up.exited, 0);
    }
  });

  it('without gm.kek or gm.kekFile (profile default), generates one in dataDir, mode 0600, says so, and keeps it', async () => {
    const dataDir = tmpDir();
    const r = await kapok(['device', 'register', 'X-1', '--json'], { KAPOK_DATA_DIR: dataDir });
    assert.equal(r.code, 0, r.stderr);
    const file = join(dataDir, 'gm.kek');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /^[0-9a-f]{32}\n$/);
    assert.match(r.stderr, /generated a KEK in .*gm\.kek.*for production set gm\.kekFile/);
    const kek = readFileSync(file, 'utf8');
    assert.ok(!r.stderr.includes(kek.trim()), 'the KEK is never printed');
    // The next command opens the keys sealed under it (a different KEK would fail: KEK_MISMATCH).
    const again = await kapok(['device', 'register', 'X-2', '--json'], { KAPOK_DATA_DIR: dataDir });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(readFileSync(file, 'utf8'), kek, 'never regenerated');
    assert.match(again.stderr, /using the KEK generated earlier/);
  });
});
