import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { kapok } from '../helpers/cli.js';
import { offYaml } from '../helpers/config.js';
import { tmpFile } from '../helpers/tmp.js';

const K1 = '00112233445566778899aabbccddeeff';
const K2 = 'ffeeddccbbaa99887766554433221100';
const PLAIN = 'sk-cli-secret-Hx42';
const PATH = 'gateway.providers.0.apiKey';

const configWith = (apiKey: string, extra: string[] = []) =>
  [
    '# upstream keys are sealed',
    ...offYaml('gateway'),
    'gateway:',
    '  providers:',
    `    - name: up # the local vLLM`,
    '      type: openai',
    '      baseUrl: http://127.0.0.1:9/v1',
    `      apiKey: ${apiKey}`,
    ...extra,
    '',
  ].join('\n');

async function encrypt(path: string, env: Record<string, string>, input = `${PLAIN}\n`): Promise<string> {
  const r = await kapok(['config', 'encrypt', '--path', path], env, undefined, input);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe('kapok config encrypt / reencrypt', () => {
  const env = { KAPOK_CONFIG_KEYS: `k1=${K1}` };

  it('encrypts stdin for a path; check and print accept it, print shows *** only', async () => {
    const sealed = await encrypt(PATH, env);
    assert.match(sealed, /^enc:sm4gcm:v1:k1:/);
    assert.ok(!sealed.includes(PLAIN));
    const file = tmpFile('kapok.yaml', configWith(sealed));
    const check = await kapok(['config', 'check', file], env);
    assert.equal(check.code, 0, check.stderr);
    for (const args of [
      ['config', 'print', '--config', file],
      ['config', 'print', '--json', '--config', file],
    ]) {
      const print = await kapok(args, env);
      assert.equal(print.code, 0, print.stderr);
      assert.ok(!print.stdout.includes(PLAIN), print.stdout);
      assert.match(print.stdout, /apiKey.*\*\*\*/);
    }
    // A sealed value in a key that is not a secret is hidden by `print` as well.
    const level = await encrypt('log.level', env, 'warn');
    const f2 = tmpFile('kapok.yaml', `${configWith(sealed)}log: { level: "${level}" }\n`);
    const p2 = await kapok(['config', 'print', '--json', '--config', f2], env);
    assert.equal(p2.code, 0, p2.stderr);
    assert.equal(JSON.parse(p2.stdout).log.level, '***');
  });

  it('exits 2 naming the path, never the value: moved, unknown key, no keys, truncated, altered', async () => {
    const sealed = await encrypt(PATH, env);
    const moved = await encrypt('gateway.providers.1.apiKey', env);
    const cases: Array<[string, Record<string, string>, string]> = [
      [moved, env, 'KAPOK_CONFIG_DECRYPT'],
      [sealed, { KAPOK_CONFIG_KEYS: `k9=${K2}` }, 'KAPOK_CONFIG_KEY_UNKNOWN'],
      [sealed, {}, 'KAPOK_CONFIG_KEY_UNKNOWN'],
      [sealed.slice(0, -10), env, 'KAPOK_CONFIG_DECRYPT'],
      [sealed, { KAPOK_CONFIG_KEYS: `k1=${K2}` }, 'KAPOK_CONFIG_DECRYPT'],
    ];
    for (const [value, e, code] of cases) {
      const r = await kapok(['config', 'check', tmpFile('kapok.yaml', configWith(value))], e);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^kapok: ${PATH.replaceAll('.', '\\.')}: .*\\[${code}\\]\\n$`));
      assert.ok(!r.stderr.includes(PLAIN) && !r.stderr.includes(value.slice(20)), r.stderr);
    }
    const badKeys = await kapok(['config', 'check', tmpFile('kapok.yaml', configWith(sealed))], {
      KAPOK_CONFIG_KEYS: 'k1=nothex',
    });
    assert.equal(badKeys.code, 2);
    assert.match(badKeys.stderr, /KAPOK_CONFIG_KEYS, entry 1: .*\[KAPOK_CONFIG_KEYS\]/);
  });

  it('refuses bad input to encrypt: a bad path, empty stdin, no keys', async () => {
    const badPath = await kapok(['config', 'encrypt', '--path', 'gateway..apiKey'], env, undefined, 'x');
    assert.equal(badPath.code, 2);
    assert.match(badPath.stderr, /--path .*\[KAPOK_CONFIG_INVALID\]/);
    const empty = await kapok(['config', 'encrypt', '--path', PATH], env, undefined, '');
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /stdin is empty/);
    const none = await kapok(['config', 'encrypt', '--path', PATH], {}, undefined, 'x');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /\[KAPOK_CONFIG_KEYS\]/);
    const unknown = await kapok(['config', 'encrypt', '--path', PATH, '--key', 'k7'], env, undefined, 'x');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /\[KAPOK_CONFIG_KEY_UNKNOWN\]/);
  });

  it('reencrypt rotates a file to a new key, keeping comments; the old key can then go', async () => {
    const both = { KAPOK_CONFIG_KEYS: `k2=${K2},k1=${K1}` };
    const sealed = await encrypt(PATH, env);
    const file = tmpFile('kapok.yaml', configWith(sealed));
    const r = await kapok(['config', 'reencrypt', '--to', 'k2', '--json', file], both);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).values, [{ path: PATH, from: 'k1' }]);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /# the local vLLM/);
    assert.match(text, /apiKey: enc:sm4gcm:v1:k2:/);
    const onlyNew = await kapok(['config', 'print', '--json', '--config', file], {
      KAPOK_CONFIG_KEYS: `k2=${K2}`,
    });
    assert.equal(onlyNew.code, 0, onlyNew.stderr);
    const onlyOld = await kapok(['config', 'check', file], env);
    assert.equal(onlyOld.code, 2);
    assert.match(onlyOld.stderr, /KAPOK_CONFIG_KEY_UNKNOWN/);
  });

  it('reencrypt leaves the file untouched when one value cannot be decrypted', async () => {
    const both = { KAPOK_CONFIG_KEYS: `k2=${K2},k1=${K1}` };
    const good = await encrypt(PATH, env);
    const moved = await encrypt('gateway.providers.0.apiKey', env);
    const text = configWith(good, [
      `    - { name: up2, type: openai, baseUrl: "http://127.0.0.1:9/v1", apiKey: "${moved}" }`,
    ]);
    const file = tmpFile('kapok.yaml', text);
    const r = await kapok(['config', 'reencrypt', '--to', 'k2', file], both);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /gateway\.providers\.1\.apiKey: .*\[KAPOK_CONFIG_DECRYPT\]/);
    assert.equal(readFileSync(file, 'utf8'), text);
    const unknownTo = await kapok(['config', 'reencrypt', '--to', 'k3', file], both);
    assert.equal(unknownTo.code, 2);
    assert.match(unknownTo.stderr, /--to k3: .*\[KAPOK_CONFIG_KEY_UNKNOWN\]/);
    writeFileSync(file, 'a: [\n');
    const broken = await kapok(['config', 'reencrypt', '--to', 'k2', file], both);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /\[KAPOK_CONFIG_PARSE\]/);
  });
});
