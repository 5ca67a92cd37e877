import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { createEtcdClient, type EtcdClient } from '../../src/adapters/etcd/client.js';
import {
  decryptConfigValue,
  encryptConfigValue,
  parseConfigKeys,
  sealedKeyId,
} from '../../src/crypto/config-values.js';
import { kapok } from '../helpers/cli.js';
import { type Etcd, etcdAvailable, startEtcd } from '../helpers/etcd.js';
import { tmpDir } from '../helpers/tmp.js';

// `kapok config reencrypt --etcd` on a real etcd: every sealed value under the prefix (a fleet key
// holding a list, an overlay key) is sealed again under the new key for its own path, in one
// compare-and-swap with a history entry; one value that does not decrypt leaves the prefix as it was.
const { skip } = await etcdAvailable();
const OLD = 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf';
const NEW = 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf';
const keys = parseConfigKeys(`new=${NEW},old=${OLD}`, 'test');
const KEYS_ENV = { KAPOK_CONFIG_KEYS: `new=${NEW},old=${OLD}` };
const seal = (path: string, v: string) => encryptConfigValue(keys, 'old', path, v);

describe('kapok config reencrypt --etcd', { skip }, () => {
  let etcd: Etcd;
  let client: EtcdClient;
  const dir = tmpDir('kapok-reenc-');
  const config = (region: string) => {
    const file = join(dir, `${region}.yaml`);
    writeFileSync(
      file,
      stringify({
        region,
        dataDir: join(dir, region),
        control: { source: 'etcd', etcd: { endpoints: [etcd.endpoint] } },
      }),
    );
    return file;
  };
  before(async () => {
    etcd = await startEtcd();
    client = createEtcdClient({ endpoints: [etcd.endpoint] });
  });
  after(async () => {
    client?.close();
    await etcd?.destroy();
  });

  it('re-seals fleet and overlay values for their paths; a moved ciphertext leaves etcd untouched', async () => {
    const providers = [
      {
        name: 'up',
        type: 'openai',
        baseUrl: 'http://x',
        apiKey: seal('gateway.providers.0.apiKey', 'sk-one'),
      },
    ];
    await client.put('/kapok/good/gateway', stringify({ providers }));
    await client.put(
      '/kapok/good/@zone%3Da/control/adminToken',
      seal('control.adminToken', 'admin-token-0123456789'),
    );
    // Sealed for another path: its tag fails where it sits.
    await client.put('/kapok/bad/log', stringify({ level: seal('control.adminToken', 'debug') }));
    await client.put('/kapok/bad/control/adminToken', seal('control.adminToken', 'admin-token-0123456789'));
    const badBefore = (await client.list('/kapok/bad/')).kvs.map((kv) => kv.value.toString());
    const [good, bad] = await Promise.all([
      kapok(['config', 'reencrypt', '--etcd', '--to', 'new', '--json', '--config', config('good')], KEYS_ENV),
      kapok(['config', 'reencrypt', '--etcd', '--to', 'new', '--config', config('bad')], KEYS_ENV),
    ]);
    assert.equal(good.code, 0, good.stderr);
    const out = JSON.parse(good.stdout);
    assert.deepEqual(out.values.map((v: { path: string; from: string }) => `${v.path} ${v.from}`).sort(), [
      'control.adminToken old',
      'gateway.providers.0.apiKey old',
    ]);
    const apiKey = parse((await client.get('/kapok/good/gateway'))?.value.toString() ?? '').providers[0]
      .apiKey;
    assert.equal(sealedKeyId(apiKey), 'new');
    assert.equal(decryptConfigValue(keys, 'gateway.providers.0.apiKey', apiKey), 'sk-one');
    const token = parse(
      (await client.get('/kapok/good/@zone%3Da/control/adminToken'))?.value.toString() ?? '',
    );
    assert.equal(sealedKeyId(token), 'new');
    assert.equal(decryptConfigValue(keys, 'control.adminToken', token), 'admin-token-0123456789');
    const history = (await client.list('/kapok/good.history/')).kvs.map((kv) =>
      JSON.parse(kv.value.toString()),
    );
    assert.deepEqual(
      history.map((h) => `${h.action} ${h.note}`),
      ['reencrypt to new'],
    );

    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /log\.level/);
    assert.doesNotMatch(bad.stderr, /debug|admin-token/);
    assert.match(bad.stderr, /\[KAPOK_CONFIG_DECRYPT\]/);
    assert.deepEqual(
      (await client.list('/kapok/bad/')).kvs.map((kv) => kv.value.toString()),
      badBefore,
    );
  });
});
