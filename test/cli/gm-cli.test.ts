import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import smCrypto from 'sm-crypto';
import { kapok } from '../helpers/cli.js';
import { kapokArgv } from '../helpers/kapok-bin.js';
import { tmpDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;
const dir = tmpDir('kapok-gm-cli-');
const msgFile = join(dir, 'msg.txt');
writeFileSync(msgFile, 'device 42 says hello');
const KEY = '0123456789abcdeffedcba9876543210';

/** Last stderr line must be `kapok: ... [CODE]`. */
function failedWith(r: { code: number | null; stderr: string }, code: string, exit = 1): void {
  assert.equal(r.code, exit, r.stderr);
  assert.match(r.stderr.trim(), new RegExp(`^kapok: .*\\[${code}\\]$`));
}

describe('kapok gm', () => {
  it('sm3 hashes a file, and stdin', async () => {
    const expected = createHash('sm3').update(readFileSync(msgFile)).digest('hex');
    const r = await kapok(['gm', 'sm3', msgFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), expected);
    const viaStdin = spawnSync(process.execPath, [...kapokArgv(), 'gm', 'sm3', '--json'], {
      cwd: root,
      input: readFileSync(msgFile),
    });
    assert.deepEqual(JSON.parse(viaStdin.stdout.toString()), { sm3: expected });
  });

  it('sm4 gcm encrypt then decrypt round-trips; a flipped bit is refused', async () => {
    const enc = await kapok(['gm', 'sm4', 'encrypt', '--key', KEY, '--aad', 'abcd', msgFile]);
    assert.equal(enc.code, 0, enc.stderr);
    const ctFile = join(dir, 'ct.hex');
    writeFileSync(ctFile, enc.stdout);
    const dec = await kapok(['gm', 'sm4', 'decrypt', '--key', KEY, '--aad', 'abcd', ctFile]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.equal(dec.stdout, readFileSync(msgFile, 'utf8'));
    const hex = enc.stdout.trim();
    writeFileSync(ctFile, `${hex.slice(0, 30)}${hex[30] === '0' ? '1' : '0'}${hex.slice(31)}`);
    failedWith(
      await kapok(['gm', 'sm4', 'decrypt', '--key', KEY, '--aad', 'abcd', ctFile]),
      'KAPOK_GM_DECRYPT_FAILED',
    );
  });

  it('sm4 names bad hex and wrong key lengths without echoing the key', async () => {
    const short = await kapok(['gm', 'sm4', 'encrypt', '--key', '0123', msgFile]);
    failedWith(short, 'KAPOK_GM_INVALID_INPUT');
    assert.match(short.stderr, /--key \(SM4 key\): expected 16 bytes/);
    const notHex = await kapok(['gm', 'sm4', 'encrypt', '--key', `${KEY.slice(0, 30)}zz`, msgFile]);
    failedWith(notHex, 'KAPOK_GM_INVALID_INPUT');
    assert.doesNotMatch(notHex.stderr, /0123456789abcdef/);
    const mode = await kapok(['gm', 'sm4', 'encrypt', '--key', KEY, '--mode', 'xts', msgFile]);
    assert.equal(mode.code, 2);
  });

  it('sm2 keygen, sign, verify; sm-crypto accepts the signature; tampering exits 1', async () => {
    const kg = await kapok(['gm', 'sm2', 'keygen', '--json']);
    const keys = JSON.parse(kg.stdout) as { privateKey: string; publicKey: string };
    const keyFile = join(dir, 'sm2.key');
    writeFileSync(keyFile, keys.privateKey);
    const sig = await kapok(['gm', 'sm2', 'sign', '--key', `@${keyFile}`, '--format', 'raw', msgFile]);
    assert.equal(sig.code, 0, sig.stderr);
    const msg = readFileSync(msgFile, 'utf8');
    assert.ok(smCrypto.sm2.doVerifySignature(msg, sig.stdout.trim(), keys.publicKey, { hash: true }));
    const ok = await kapok(['gm', 'sm2', 'verify', '-p', keys.publicKey, '-s', sig.stdout.trim(), msgFile]);
    assert.equal(ok.stdout.trim(), 'valid');
    const bad = await kapok([
      'gm',
      'sm2',
      'verify',
      '-p',
      keys.publicKey,
      '-s',
      sig.stdout.trim(),
      '--id',
      'x',
      msgFile,
    ]);
    failedWith(bad, 'KAPOK_GM_VERIFY_FAILED');
  });

  it('sm9 master keygen, extract, sign, verify (and refuses another ID)', async () => {
    const mk = JSON.parse((await kapok(['gm', 'sm9', 'master-keygen', '--json'])).stdout) as {
      privateKey: string;
      publicKey: string;
    };
    assert.equal(mk.publicKey.length, 258);
    const uk = await kapok(['gm', 'sm9', 'extract', '--master-key', mk.privateKey, '--id', 'SN-0001']);
    assert.equal(uk.code, 0, uk.stderr);
    const sig = await kapok(['gm', 'sm9', 'sign', '-P', mk.publicKey, '-k', uk.stdout.trim(), msgFile]);
    assert.equal(sig.code, 0, sig.stderr);
    const s = sig.stdout.trim();
    const ok = await kapok([
      'gm',
      'sm9',
      'verify',
      '-P',
      mk.publicKey,
      '--id',
      'SN-0001',
      '-s',
      s,
      '--json',
      msgFile,
    ]);
    assert.deepEqual(JSON.parse(ok.stdout), { valid: true });
    failedWith(
      await kapok(['gm', 'sm9', 'verify', '-P', mk.publicKey, '--id', 'SN-0002', '-s', s, msgFile]),
      'KAPOK_GM_VERIFY_FAILED',
    );
  });

  it('sm9 encap and decap agree', async () => {
    const mk = JSON.parse(
      (await kapok(['gm', 'sm9', 'master-keygen', '--type', 'enc', '--json'])).stdout,
    ) as {
      privateKey: string;
      publicKey: string;
    };
    const uk = (
      await kapok(['gm', 'sm9', 'extract', '--type', 'enc', '--master-key', mk.privateKey, '--id', 'bob'])
    ).stdout.trim();
    const enc = JSON.parse(
      (await kapok(['gm', 'sm9', 'encap', '-P', mk.publicKey, '--id', 'bob', '--json'])).stdout,
    );
    const dec = await kapok(['gm', 'sm9', 'decap', '-k', uk, '--id', 'bob', '-c', enc.encapsulation]);
    assert.equal(dec.stdout.trim(), enc.key);
    failedWith(
      await kapok(['gm', 'sm9', 'decap', '-k', uk, '--id', 'bob', '-c', '04']),
      'KAPOK_GM_INVALID_INPUT',
    );
  });
});
