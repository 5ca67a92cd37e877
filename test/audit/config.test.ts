import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readAuditKek, readShipKey } from '../../src/audit/trail.js';
import { configSchema } from '../../src/config.js';
import { isKapokError } from '../../src/core/errors.js';
import { toHex } from '../../src/crypto/bytes.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';

/** The audit section (docs/configuration.md#audit): what enabling it and shipping require; key files. */

const KEK = '00112233445566778899aabbccddeeff';

describe('audit configuration', () => {
  it('enabled needs a KEK; a ship url needs a key', () => {
    const paths = (audit: unknown) => {
      const r = configSchema.safeParse({ audit });
      return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
    };
    assert.deepEqual(paths({ enabled: true }), ['audit.kek']);
    assert.deepEqual(paths({ enabled: true, kek: KEK, ship: { url: 'https://centre.example/ingest' } }), [
      'audit.ship.key',
    ]);
    assert.deepEqual(paths({ enabled: true, kek: KEK, ship: { url: 'ftp://centre.example/', key: KEK } }), [
      'audit.ship.url',
    ]);
    assert.deepEqual(
      paths({
        enabled: true,
        kekFile: '/etc/kapok/audit.kek',
        ship: { url: 'https://c.example/', keyFile: '/k' },
      }),
      [],
    );
  });

  it('reads the KEK and the shipping key from files; a bad file is KAPOK_AUDIT_KEK_FILE naming it', () => {
    assert.equal(toHex(readAuditKek({ kek: null, kekFile: tmpFile('kek', `${KEK}\n`) })), KEK);
    assert.equal(toHex(readShipKey({ key: null, keyFile: tmpFile('key', KEK) })), KEK);
    const missing = join(tmpDir(), 'none');
    assert.throws(
      () => readAuditKek({ kek: null, kekFile: missing }),
      (e) =>
        isKapokError(e, 'KAPOK_AUDIT_KEK_FILE') &&
        e.message.includes(missing) &&
        e.message.includes('audit.kekFile'),
    );
    const short = tmpFile('key', 'zz-not-a-key-zz');
    assert.throws(
      () => readShipKey({ key: null, keyFile: short }),
      (e) =>
        isKapokError(e, 'KAPOK_AUDIT_KEK_FILE') &&
        /audit\.ship\.keyFile .* 32 hex digits/.test(e.message) &&
        !e.message.includes('zz-not-a-key-zz'),
    );
  });
});
