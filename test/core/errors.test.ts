import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CATALOGUE, KapokError } from '../../src/core/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  it('documents every code in docs/errors.md with its HTTP status', () => {
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.ok(row, `docs/errors.md has no row for ${code}`);
      assert.ok(
        row.includes(`| ${spec.status} |`),
        `docs/errors.md gives ${code} another status than ${spec.status}`,
      );
    }
  });

  it('lists no code in the docs that the catalogue lacks', () => {
    const documented = [...doc.matchAll(/^\| `(KAPOK_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    for (const code of documented)
      assert.ok(code && code in ERROR_CATALOGUE, `${code} is documented but not in the catalogue`);
  });

  it('every code follows KAPOK_<AREA>_<WHAT> and has a 4xx/5xx status', () => {
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      assert.match(code, /^KAPOK_[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      assert.ok(spec.status >= 400 && spec.status < 600, code);
    }
  });

  it('KapokError carries code, status, cause and a JSON shape without the cause', () => {
    const cause = new Error('pg: password authentication failed for user "x"');
    const err = new KapokError('KAPOK_STORE_CONFLICT', 'device 42 already exists', {
      cause,
      details: { serial: '42' },
    });
    assert.equal(err.status, 409);
    assert.equal(err.cause, cause);
    assert.deepEqual(err.toJSON(), {
      error: { code: 'KAPOK_STORE_CONFLICT', message: 'device 42 already exists', details: { serial: '42' } },
    });
    assert.equal(new KapokError('KAPOK_INTERNAL').message, ERROR_CATALOGUE.KAPOK_INTERNAL.summary);
  });
});
