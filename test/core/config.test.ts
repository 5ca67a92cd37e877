import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { openStore } from '../../src/app.js';
import { configSchema, loadKapokConfig } from '../../src/config.js';
import { leafPaths, redact } from '../../src/core/config/index.js';
import { isKapokError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;
const defaults = () => configSchema.parse({});

/** Loads a YAML text with the given env, in an empty cwd (so no stray ./kapok.yaml is read). */
function load(yamlText: string | null, env: Record<string, string> = {}) {
  const file = yamlText === null ? undefined : tmpFile('kapok.yaml', yamlText);
  return loadKapokConfig({ file, env, cwd: tmpDir() });
}

function rejects(fn: () => unknown, code: string, ...fragments: (string | RegExp)[]) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isKapokError(err), `expected a KapokError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const f of fragments) {
      if (typeof f === 'string')
        assert.ok(
          err.message.includes(f),
          `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`,
        );
      else assert.match(err.message, f);
    }
    assert.ok(!err.message.includes('\n'), 'config errors are one line');
    return true;
  });
}

describe('config: defaults and the example file', () => {
  it('runs on defaults with no file and no environment', () => {
    const { config, file } = load(null);
    assert.equal(file, null);
    assert.equal(config.region, 'guangzhou');
    assert.equal(config.http.port, 8080);
    assert.equal(config.grpc.port, 8081);
    assert.equal(config.store.driver, 'sqlite');
    assert.equal(config.kv.driver, 'memory');
    assert.equal(config.profile, 'default');
  });

  it('kapok.example.yaml documents every schema key with its default value', () => {
    const example = parse(readFileSync(join(root, 'kapok.example.yaml'), 'utf8'));
    for (const path of leafPaths(configSchema)) {
      let cur: unknown = example;
      for (const p of path) {
        assert.ok(cur && typeof cur === 'object' && p in cur, `kapok.example.yaml lacks ${path.join('.')}`);
        cur = (cur as Record<string, unknown>)[p];
      }
    }
    // And nothing more, with the same values: the example must validate to exactly the defaults.
    assert.deepEqual(configSchema.parse(example), defaults());
  });

  it('reads ./kapok.yaml from the working directory when no --config is given', () => {
    const cwd = tmpDir();
    writeFileSync(join(cwd, 'kapok.yaml'), 'region: shenzhen\n');
    const { config, file } = loadKapokConfig({ env: {}, cwd });
    assert.equal(config.region, 'shenzhen');
    assert.equal(file, join(cwd, 'kapok.yaml'));
  });

  it('treats an empty file as all defaults', () => {
    assert.deepEqual(load('# nothing here\n').config, defaults());
  });
});

describe('config: environment overrides', () => {
  it('maps KAPOK_ + UPPER_SNAKE path parts joined by __ onto keys, typed by the schema', () => {
    const { config, envOverrides } = load('http:\n  port: 9000\n', {
      KAPOK_HTTP__PORT: '9090',
      KAPOK_HTTP__BODY_LIMIT_BYTES: '2048',
      KAPOK_REGION: '123',
      KAPOK_LOG__REDACT: '[a.b, c]',
      KAPOK_HTTP__TRUST_PROXY: 'true',
      KAPOK_TRACING__OTLP_ENDPOINT: '',
      KAPOK_DATA_DIR: '/var/lib/kapok',
    });
    assert.equal(config.http.port, 9090, 'env wins over the file');
    assert.equal(config.http.bodyLimitBytes, 2048);
    assert.equal(config.region, '123', 'string keys keep the raw text');
    assert.deepEqual(config.log.redact, ['a.b', 'c']);
    assert.equal(config.http.trustProxy, true);
    assert.equal(config.tracing.otlpEndpoint, null);
    assert.equal(config.dataDir, '/var/lib/kapok');
    assert.equal(envOverrides.get('http.port'), 'KAPOK_HTTP__PORT');
  });

  it('rejects a variable that names no key, listing the known ones', () => {
    rejects(
      () => load(null, { KAPOK_HTTP__PROT: '1' }),
      'KAPOK_CONFIG_ENV',
      'KAPOK_HTTP__PROT',
      'KAPOK_HTTP__PORT',
    );
    rejects(() => load(null, { KAPOK_NOPE: '1' }), 'KAPOK_CONFIG_ENV', 'KAPOK_NOPE', 'top level');
    rejects(() => load(null, { KAPOK_HTTP__PORT__X: '1' }), 'KAPOK_CONFIG_ENV', 'KAPOK_HTTP__PORT__X');
  });

  it('names the variable when its value is wrong', () => {
    rejects(
      () => load(null, { KAPOK_HTTP__PORT: 'eighty' }),
      'KAPOK_CONFIG_INVALID',
      'http.port',
      'expected number',
      '"eighty"',
      'from KAPOK_HTTP__PORT',
    );
    rejects(() => load(null, { KAPOK_HTTP__PORT: '[' }), 'KAPOK_CONFIG_ENV', 'KAPOK_HTTP__PORT');
  });

  it('ignores the reserved non-config variables (KAPOK_REQUIRE_SERVICES, KAPOK_TEST_*)', () => {
    const { config } = load(null, { KAPOK_REQUIRE_SERVICES: '1', KAPOK_TEST_PG_URL: 'x' });
    assert.deepEqual(config, defaults());
  });
});

describe('config: bad input gets one clear line', () => {
  it('malformed YAML names the line', () => {
    rejects(() => load('http:\n  port: [8080\n'), 'KAPOK_CONFIG_PARSE', 'not valid YAML', /line \d+/);
    rejects(() => load('region: "unterminated\n'), 'KAPOK_CONFIG_PARSE');
  });

  it('a duplicated key is an error, not "last one wins"', () => {
    rejects(() => load('region: a\nregion: b\n'), 'KAPOK_CONFIG_PARSE', 'region');
  });

  it('a top level that is not a mapping is rejected', () => {
    rejects(() => load('- a\n- b\n'), 'KAPOK_CONFIG_PARSE', 'mapping', 'a list');
    rejects(() => load('just text\n'), 'KAPOK_CONFIG_PARSE', 'mapping');
  });

  it('wrong types name the key, what was expected and what was found', () => {
    rejects(
      () => load('http:\n  port: "eighty"\n'),
      'KAPOK_CONFIG_INVALID',
      'http.port: expected number, found the string "eighty"',
    );
    rejects(() => load('http: 8080\n'), 'KAPOK_CONFIG_INVALID', 'http: expected object, found number 8080');
    rejects(() => load('log:\n  redact: nope\n'), 'KAPOK_CONFIG_INVALID', 'log.redact', 'expected array');
    rejects(() => load('profile: prod\n'), 'KAPOK_CONFIG_INVALID', 'profile', '"default", "gov"', '"prod"');
  });

  it('out-of-range values give the bound', () => {
    rejects(
      () => load('http:\n  port: 70000\n'),
      'KAPOK_CONFIG_INVALID',
      'http.port: expected <= 65535, found number 70000',
    );
    rejects(() => load('http:\n  port: -1\n'), 'KAPOK_CONFIG_INVALID', 'http.port: expected >= 0');
    rejects(() => load('http:\n  port: 80.5\n'), 'KAPOK_CONFIG_INVALID', 'http.port', 'int');
    rejects(() => load('tracing:\n  sampleRatio: 2\n'), 'KAPOK_CONFIG_INVALID', 'tracing.sampleRatio');
  });

  it('unknown keys are rejected with a suggestion', () => {
    rejects(
      () => load('http:\n  prot: 1\n'),
      'KAPOK_CONFIG_UNKNOWN_KEY',
      'http.prot: unknown key',
      'did you mean "port"',
    );
    rejects(() => load('regoin: x\n'), 'KAPOK_CONFIG_UNKNOWN_KEY', 'regoin', 'did you mean "region"');
    rejects(() => load('gateway:\n  enabled: false\n  zzz: 1\n'), 'KAPOK_CONFIG_UNKNOWN_KEY', 'gateway.zzz');
  });

  it('reports every problem, each with its key', () => {
    rejects(
      () => load('http:\n  port: 70000\n  host: ""\nbogus: 1\n'),
      'KAPOK_CONFIG_INVALID',
      'http.port',
      'http.host',
      'bogus',
    );
  });

  it('store.checkpointIntervalMs: 0 (off, the default) or 10..60000 ms', () => {
    assert.equal(defaults().store.checkpointIntervalMs, 0);
    assert.equal(load('store:\n  checkpointIntervalMs: 250\n').config.store.checkpointIntervalMs, 250);
    rejects(
      () => load('store:\n  checkpointIntervalMs: 5\n'),
      'KAPOK_CONFIG_INVALID',
      'store.checkpointIntervalMs',
    );
    rejects(() => load('store:\n  checkpointIntervalMs: 60001\n'), 'KAPOK_CONFIG_INVALID', '<= 60000');
  });

  it('openStore hands store.checkpointIntervalMs to SQLite: its checkpoint worker takes over', async () => {
    // The store turns SQLite's own checkpoint (wal_autocheckpoint, 1000 pages) off once its worker is up.
    const autocheckpoint = async (yaml: string, waitForZero: boolean) => {
      const store = await openStore(load(yaml), tmpDir(), createLogger({ level: 'silent' }));
      try {
        const read = async () =>
          (await store.query<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint'))[0]
            ?.wal_autocheckpoint;
        for (
          const deadline = Date.now() + 10_000;
          waitForZero && (await read()) !== 0 && Date.now() < deadline;
        )
          await new Promise((r) => setTimeout(r, 20));
        return await read();
      } finally {
        await store.close();
      }
    };
    assert.equal(await autocheckpoint('store:\n  checkpointIntervalMs: 20\n', true), 0);
    assert.equal(await autocheckpoint('{}\n', false), 1000);
    assert.equal(await autocheckpoint('store:\n  walAutocheckpointPages: 4000\n', false), 4000);
  });

  it('store.walAutocheckpointPages: 1000 by default (as in SQLite), 100..100000 pages', () => {
    assert.equal(defaults().store.walAutocheckpointPages, 1000);
    // Below and above the range, not whole, and a string: each refused, naming the key.
    for (const bad of ['99', '2.5', '100001', '"4000"'])
      rejects(
        () => load(`store:\n  walAutocheckpointPages: ${bad}\n`),
        'KAPOK_CONFIG_INVALID',
        'store.walAutocheckpointPages',
      );
  });

  it('a postgres store needs a url', () => {
    rejects(() => load('store:\n  driver: postgres\n'), 'KAPOK_CONFIG_INVALID', 'store.url', 'postgres');
    rejects(() => load('kv:\n  driver: redis\n'), 'KAPOK_CONFIG_INVALID', 'kv.url', 'redis');
  });

  it('a missing or oversized file, or a folder, is a file error', () => {
    rejects(
      () => loadKapokConfig({ file: '/nonexistent/kapok.yaml', env: {} }),
      'KAPOK_CONFIG_FILE',
      '/nonexistent/kapok.yaml',
    );
    rejects(() => loadKapokConfig({ file: tmpDir(), env: {} }), 'KAPOK_CONFIG_FILE', 'not a regular file');
    rejects(() => load(`region: ${'x'.repeat(1024 * 1024 + 10)}\n`), 'KAPOK_CONFIG_FILE', 'larger than');
  });

  it('an alias bomb is refused instead of expanded', () => {
    let bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n';
    for (let i = 0; i < 8; i++)
      bomb += `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(97 + i)}`)
        .join(',')}]\n`;
    rejects(() => load(bomb), 'KAPOK_CONFIG_PARSE');
  });

  it('binary garbage is a parse or type error, never a crash', () => {
    const garbage = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)).toString('latin1');
    assert.throws(
      () => load(garbage),
      (err: unknown) => isKapokError(err) && err.code.startsWith('KAPOK_CONFIG_'),
    );
  });
});

describe('config: profile gov', () => {
  it('refuses to run unless GOVERNMENT_ENV=prod', () => {
    // Profile gov requires the audit trail (docs/audit.md), an admin token for the capabilities
    // (all on by default) and a KEK kept apart: given here through the environment.
    const audit = {
      KAPOK_ADMIN__TOKENS: '[{name: ops, role: admin, token: ops-token-0123456789}]',
      KAPOK_GM__KEK: 'ffeeddccbbaa99887766554433221100',
      KAPOK_AUDIT__ENABLED: 'true',
      KAPOK_AUDIT__KEK: '00112233445566778899aabbccddeeff',
      KAPOK_AUDIT__ADMIN_TOKEN: 'audit-admin-token-0001',
    };
    rejects(() => load('profile: gov\n', audit), 'KAPOK_CONFIG_PROFILE', 'GOVERNMENT_ENV=prod', 'unset');
    rejects(
      () => load('profile: gov\n', { GOVERNMENT_ENV: 'staging', ...audit }),
      'KAPOK_CONFIG_PROFILE',
      '"staging"',
    );
    assert.equal(load('profile: gov\n', { GOVERNMENT_ENV: 'prod', ...audit }).config.profile, 'gov');
    assert.equal(
      load(null, { KAPOK_PROFILE: 'gov', GOVERNMENT_ENV: 'prod', ...audit }).config.profile,
      'gov',
    );
    rejects(
      () => load('profile: gov\n', { GOVERNMENT_ENV: 'prod' }),
      'KAPOK_CONFIG_INVALID',
      'audit.enabled',
    );
  });
});

describe('config: secrets', () => {
  it('redact() shows secrets as *** and leaves the rest', () => {
    const { config } = load(
      'store:\n  driver: postgres\n  url: postgres://u:hunter2@db/k\ntracing:\n  headers: { authorization: "Bearer abc" }\n',
    );
    const shown = redact(configSchema, config) as typeof config;
    assert.equal(shown.store.url, '***');
    assert.equal(shown.tracing.headers as unknown, '***');
    assert.equal(shown.store.driver, 'postgres');
    assert.equal(shown.kv.url, null, 'an unset secret stays null');
    assert.ok(!JSON.stringify(shown).includes('hunter2'));
  });

  it('never echoes a secret value in an error', () => {
    rejects(() => load('store:\n  url: 12345678\n'), 'KAPOK_CONFIG_INVALID', 'store.url');
    try {
      load('store:\n  url: 12345678\n');
    } catch (err) {
      assert.ok(!(err as Error).message.includes('12345678'));
      assert.match((err as Error).message, /found a value that is not shown \(a secret\)/);
    }
  });

  it('a required secret left unset says so, not "found ***"', () => {
    try {
      load('gm:\n  enabled: true\n  keyWrap: pbkdf2\n');
      assert.fail('pbkdf2 key wrapping without a factory secret must not load');
    } catch (err) {
      const m = (err as Error).message;
      assert.match(m, /gm\.factorySecret: required when gm\.keyWrap is pbkdf2/);
      assert.ok(!m.includes('***') && !/found/.test(m), m);
    }
  });
});
