import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadKapokConfig } from '../../src/config.js';
import { isKapokError } from '../../src/core/errors.js';
import {
  configKeysFromEnv,
  decryptConfigValue,
  encryptConfigValue,
  parseConfigKeys,
} from '../../src/crypto/config-values.js';
import { offYaml } from '../helpers/config.js';
import { tmpFile } from '../helpers/tmp.js';

const K1 = '00112233445566778899aabbccddeeff';
const K2 = 'ffeeddccbbaa99887766554433221100';
const keys = parseConfigKeys(`k1=${K1}\n# the old one\nk0=${K2}\n`, 'test');
const PATH = 'gateway.providers.0.apiKey';
const PLAIN = 'sk-upstream-secret-Zq81';

/** Asserts a KapokError with `code` whose message names `path` and shows neither value. */
function rejects(fn: () => unknown, code: string, path: string, ...hidden: string[]) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isKapokError(err), String(err));
    assert.equal(err.code, code);
    assert.ok(err.message.includes(path), err.message);
    for (const h of hidden) assert.ok(!err.message.includes(h), `message leaks a value: ${err.message}`);
    return true;
  });
}

describe('encrypted config values (enc:sm4gcm:v1)', () => {
  it('round-trips, with a fresh nonce each time', () => {
    const a = encryptConfigValue(keys, 'k1', PATH, PLAIN);
    const b = encryptConfigValue(keys, 'k1', PATH, PLAIN);
    assert.match(a, /^enc:sm4gcm:v1:k1:[A-Za-z0-9+/]+=*$/);
    assert.notEqual(a, b);
    assert.equal(decryptConfigValue(keys, PATH, a), PLAIN);
    assert.equal(decryptConfigValue(keys, PATH, encryptConfigValue(keys, 'k1', PATH, '密钥 ✓')), '密钥 ✓');
  });

  it('refuses a ciphertext moved to another key path (the AAD is the path)', () => {
    const sealed = encryptConfigValue(keys, 'k1', PATH, PLAIN);
    rejects(
      () => decryptConfigValue(keys, 'edge.adminToken', sealed),
      'KAPOK_CONFIG_DECRYPT',
      'edge.adminToken',
      PLAIN,
      sealed,
    );
  });

  it('refuses a wrong key under the same id, an altered byte and a truncated value', () => {
    const sealed = encryptConfigValue(keys, 'k1', PATH, PLAIN);
    const other = parseConfigKeys(`k1=${K2}`, 'test');
    rejects(() => decryptConfigValue(other, PATH, sealed), 'KAPOK_CONFIG_DECRYPT', PATH, PLAIN);
    const raw = Buffer.from(sealed.split(':')[4] as string, 'base64');
    raw[14] = (raw[14] as number) ^ 1;
    const altered = `enc:sm4gcm:v1:k1:${raw.toString('base64')}`;
    rejects(() => decryptConfigValue(keys, PATH, altered), 'KAPOK_CONFIG_DECRYPT', PATH, PLAIN);
    // Cut at a base64 boundary (valid base64, tag missing) and anywhere (invalid base64).
    const body = sealed.split(':')[4] as string;
    const cut4 = `enc:sm4gcm:v1:k1:${body.slice(0, body.length - 8)}`;
    rejects(() => decryptConfigValue(keys, PATH, cut4), 'KAPOK_CONFIG_DECRYPT', PATH, PLAIN);
    rejects(() => decryptConfigValue(keys, PATH, sealed.slice(0, -3)), 'KAPOK_CONFIG_DECRYPT', PATH, PLAIN);
    rejects(() => decryptConfigValue(keys, PATH, 'enc:sm4gcm:v1:k1:AAAA'), 'KAPOK_CONFIG_DECRYPT', PATH);
    rejects(() => decryptConfigValue(keys, PATH, 'enc:sm4gcm:v1:'), 'KAPOK_CONFIG_DECRYPT', PATH);
  });

  it('names an unknown key id, and says how to configure keys when there are none', () => {
    const sealed = encryptConfigValue(keys, 'k1', PATH, PLAIN);
    const only0 = parseConfigKeys(`k0=${K2}`, 'test');
    rejects(() => decryptConfigValue(only0, PATH, sealed), 'KAPOK_CONFIG_KEY_UNKNOWN', PATH, PLAIN);
    rejects(() => decryptConfigValue(null, PATH, sealed), 'KAPOK_CONFIG_KEY_UNKNOWN', 'KAPOK_CONFIG_KEYS');
  });

  it('rotation: values under the old key still decrypt while both keys are configured', () => {
    const old = encryptConfigValue(keys, 'k0', PATH, PLAIN);
    assert.equal(decryptConfigValue(keys, PATH, old), PLAIN);
  });

  it('refuses malformed key lists, naming the entry but not the key', () => {
    for (const bad of ['', 'k1', `k 1=${K1}`, `k1=${K1.slice(2)}`, `k1=${K1}zz`, `k1=${K1},k1=${K2}`]) {
      assert.throws(
        () => parseConfigKeys(bad, 'KAPOK_CONFIG_KEYS'),
        (e: unknown) => isKapokError(e) && e.code === 'KAPOK_CONFIG_KEYS' && !e.message.includes(K1.slice(4)),
        bad,
      );
    }
    assert.equal(configKeysFromEnv({}), null);
    assert.deepEqual(
      [...(configKeysFromEnv({ KAPOK_CONFIG_KEYS: `a=${K1},b=${K2}` }) ?? []).keys()],
      ['a', 'b'],
    );
    const file = tmpFile('keys', `# rotation\nnew=${K2}\nold=${K1}\n`);
    assert.deepEqual([...(configKeysFromEnv({ KAPOK_CONFIG_KEYS_FILE: file }) ?? []).keys()], ['new', 'old']);
    assert.throws(
      () => configKeysFromEnv({ KAPOK_CONFIG_KEYS_FILE: '/nonexistent/keys' }),
      (e: unknown) =>
        isKapokError(e) && e.code === 'KAPOK_CONFIG_KEYS' && e.message.includes('/nonexistent/keys'),
    );
  });
});

describe('config loading decrypts before validation', () => {
  const env = { KAPOK_CONFIG_KEYS: `k1=${K1}` };
  const yaml = (apiKey: string, extra = '') =>
    tmpFile(
      'kapok.yaml',
      [
        ...offYaml('gateway'),
        'gateway:',
        '  providers:',
        `    - { name: up, type: openai, baseUrl: "http://127.0.0.1:9/v1", apiKey: "${apiKey}" }`,
        extra,
      ].join('\n'),
    );

  it('gives the capability the plaintext and lists the path as sealed', () => {
    const loaded = loadKapokConfig({ file: yaml(encryptConfigValue(keys, 'k1', PATH, PLAIN)), env });
    assert.equal(loaded.config.gateway.providers[0]?.apiKey, PLAIN);
    assert.deepEqual(loaded.sealed, [PATH]);
  });

  it('decrypts values set from the environment too', () => {
    const loaded = loadKapokConfig({
      file: yaml('plain'),
      env: { ...env, KAPOK_LOG__LEVEL: encryptConfigValue(keys, 'k1', 'log.level', 'debug') },
    });
    assert.equal(loaded.config.log.level, 'debug');
    assert.deepEqual(loaded.sealed, ['log.level']);
  });

  it('an invalid decrypted value is reported by path, its value not shown', () => {
    const sealed = encryptConfigValue(keys, 'k1', 'http.port', 'not-a-port-7yQ');
    const file = yaml('plain', `http: { port: "${sealed}" }`);
    rejects(
      () => loadKapokConfig({ file, env }),
      'KAPOK_CONFIG_INVALID',
      'http.port',
      'not-a-port-7yQ',
      sealed,
    );
  });

  it('a ciphertext moved within the file fails, naming the new path', () => {
    const sealed = encryptConfigValue(keys, 'k1', PATH, PLAIN);
    const second = `    - { name: up2, type: openai, baseUrl: "http://127.0.0.1:9/v1", apiKey: "${sealed}" }`;
    const file = yaml('plain', second);
    rejects(
      () => loadKapokConfig({ file, env }),
      'KAPOK_CONFIG_DECRYPT',
      'gateway.providers.1.apiKey',
      PLAIN,
      sealed,
    );
  });
});
