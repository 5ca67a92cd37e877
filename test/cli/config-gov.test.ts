import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadKapokConfig } from '../../src/config.js';
import type { KapokError } from '../../src/core/errors.js';
import { kapok } from '../helpers/cli.js';
import { offYaml } from '../helpers/config.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

/**
 * Profile gov at config check (docs/configuration.md#admin-access): no anonymous clients, no enabled
 * capability whose admin API no token opens. Exit 2 with one line naming the key.
 */

const GOV = {
  GOVERNMENT_ENV: 'prod',
  // Profile gov requires the audit trail (docs/audit.md); the refusal itself is tested below.
  KAPOK_AUDIT__ENABLED: 'true',
  KAPOK_AUDIT__KEK: '00112233445566778899aabbccddeeff',
  KAPOK_AUDIT__ADMIN_TOKEN: 'audit-admin-token-0001',
};
const KEK = '00112233445566778899aabbccddeeff';

/** Checks `yaml` with every capability it does not name turned off (each is on by default). */
const check = (yaml: string, env: Record<string, string> = GOV) => {
  const named = [...yaml.matchAll(/^(\w+):/gm)].map((m) => m[1] as string);
  return kapok(['config', 'check', tmpFile('k.yaml', [yaml, ...offYaml(...named)].join('\n'))], env);
};

const oneLine = (stderr: string) => {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  return lines[0] as string;
};

describe('kapok config check, profile gov', () => {
  it('refuses edge.acl.enabled: false (MQTT without authorization)', async () => {
    const r = await check(
      `profile: gov\nedge:\n  adminToken: ${'e'.repeat(16)}\n  acl:\n    enabled: false\n`,
    );
    assert.equal(r.code, 2);
    assert.match(
      oneLine(r.stderr),
      /^kapok: edge\.acl\.enabled: profile gov refuses MQTT without authorization/,
    );
  });

  it('refuses gateway.auth.anonymous: true', async () => {
    const r = await check(
      `profile: gov\ngateway:\n  auth:\n    anonymous: true\n    adminToken: ${'g'.repeat(16)}\n`,
    );
    assert.equal(r.code, 2);
    assert.match(
      oneLine(r.stderr),
      /^kapok: gateway\.auth\.anonymous: profile gov refuses anonymous clients.*\[KAPOK_CONFIG_INVALID\]$/,
    );
  });

  it('refuses edge.auth.anonymous: true', async () => {
    const r = await check(
      `profile: gov\nedge:\n  adminToken: ${'e'.repeat(16)}\n  auth:\n    anonymous: true\n`,
    );
    assert.equal(r.code, 2);
    assert.match(oneLine(r.stderr), /^kapok: edge\.auth\.anonymous: profile gov refuses anonymous clients/);
  });

  it('refuses an enabled capability whose admin API has no token at all, naming its key', async () => {
    const r = await check(`profile: gov\ngm:\n  enabled: true\n  kek: "${KEK}"\n`);
    assert.equal(r.code, 2);
    assert.match(
      oneLine(r.stderr),
      /^kapok: gm\.adminToken: profile gov needs an admin token for gm: set gm\.adminToken or list admin\.tokens/,
    );
  });

  it('refuses audit disabled (等保 level 3: every administrative act recorded)', async () => {
    const r = await check(`profile: gov\nedge:\n  adminToken: ${'e'.repeat(16)}\n`, {
      GOVERNMENT_ENV: 'prod',
    });
    assert.equal(r.code, 2);
    assert.match(
      oneLine(r.stderr),
      /^kapok: audit\.enabled: profile gov needs the audit trail.*\[KAPOK_CONFIG_INVALID\]$/,
    );
  });

  it('accepts every capability enabled when admin.tokens lists a token, or with its own token', async () => {
    const env = {
      ...GOV,
      ...Object.fromEntries(
        ['GATEWAY', 'INFERENCE', 'EDGE', 'V2X', 'GM'].map((c) => [`KAPOK_${c}__ENABLED`, 'true']),
      ),
      KAPOK_GM__KEK: KEK,
      KAPOK_PROFILE: 'gov',
    };
    const roles = await kapok(
      ['config', 'check', '--json'],
      { ...env, KAPOK_ADMIN__TOKENS: '[{name: ops, role: operator, token: ops-token-0123456789}]' },
      tmpDir(),
    );
    assert.equal(roles.code, 0, roles.stderr);
    assert.equal(JSON.parse(roles.stdout).ok, true);
    const own = await check(`profile: gov\nedge:\n  enabled: true\n  adminToken: ${'e'.repeat(16)}\n`);
    assert.equal(own.code, 0, own.stderr);
  });
});

describe('admin.tokens validation', () => {
  const load = (yaml: string) => loadKapokConfig({ file: tmpFile('k.yaml', yaml), env: {} });
  const messageOf = (yaml: string) => {
    try {
      load(yaml);
      return null;
    } catch (err) {
      return err as KapokError;
    }
  };
  const entry = (name: string, role: string, token: string) =>
    `  - name: ${name}\n    role: ${role}\n    token: ${token}\n`;

  it('takes named, role-scoped tokens', () => {
    const c = load(
      `admin:\n  tokens:\n${entry('dash', 'viewer', 'v'.repeat(16))}${entry('ops', 'operator', 'o'.repeat(16))}`,
    );
    assert.deepEqual(
      c.config.admin.tokens.map((t) => [t.name, t.role]),
      [
        ['dash', 'viewer'],
        ['ops', 'operator'],
      ],
    );
  });

  it('refuses duplicate names and duplicate tokens, never echoing a token', () => {
    const dupName = messageOf(
      `admin:\n  tokens:\n${entry('ops', 'viewer', 'a'.repeat(16))}${entry('ops', 'admin', 'b'.repeat(16))}`,
    );
    assert.match(String(dupName?.message), /admin\.tokens\.1\.name: duplicate name ops/);
    const secret = 'same-secret-0123456789';
    const dupToken = messageOf(
      `admin:\n  tokens:\n${entry('a', 'viewer', secret)}${entry('b', 'admin', secret)}`,
    );
    assert.match(
      String(dupToken?.message),
      /admin\.tokens\.1\.token: same secret as admin\.tokens\.0\.token/,
    );
    assert.ok(!String(dupToken?.message).includes(secret));
  });

  it('refuses a short token, an unknown role and a capability token that repeats a role token, echoing no secret', () => {
    const short = messageOf(`admin:\n  tokens:\n${entry('a', 'viewer', 'short-secret')}`);
    assert.equal(short?.code, 'KAPOK_CONFIG_INVALID');
    assert.match(String(short?.message), /admin\.tokens/);
    assert.ok(!String(short?.message).includes('short-secret'));
    const role = messageOf(`admin:\n  tokens:\n${entry('a', 'root', 'r'.repeat(16))}`);
    assert.match(String(role?.message), /admin\.tokens/);
    const shared = 'shared-secret-0123456';
    const reused = messageOf(
      `admin:\n  tokens:\n${entry('a', 'viewer', shared)}edge:\n  adminToken: ${shared}\n`,
    );
    assert.match(String(reused?.message), /edge\.adminToken: same secret as a token of admin\.tokens/);
    assert.ok(!String(reused?.message).includes(shared));
  });
});
